package codec

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hamba/avro/v2/registry"
)

// Register returns the registry id of schemaJSON under subject, registering
// it first if the subject does not hold it yet. The agent calls it once at
// start and keeps the id for NewConfluent.
func Register(ctx context.Context, registryURL, subject, schemaJSON string) (int, error) {
	// The registry may store a schema it cannot parse (srfake does); check
	// first so a bad schema never gets a version there.
	if _, err := newBodyCodec([]byte(schemaJSON)); err != nil {
		return 0, fmt.Errorf("register under subject %q: %w", subject, err)
	}
	client, err := registry.NewClient(registryURL)
	if err != nil {
		return 0, fmt.Errorf("schema registry url %q: %w", registryURL, err)
	}
	id, _, err := client.IsRegistered(ctx, subject, schemaJSON)
	if err == nil {
		return id, nil
	}
	// 404 means the subject or the schema under it is unknown: register it.
	// Anything else (unreachable, 5xx, invalid schema) stops here.
	var rerr registry.Error
	if !errors.As(err, &rerr) || rerr.StatusCode != http.StatusNotFound {
		return 0, fmt.Errorf("look up schema under subject %q at %s: %w", subject, registryURL, err)
	}
	id, _, err = client.CreateSchema(ctx, subject, schemaJSON)
	if err != nil {
		return 0, fmt.Errorf("register schema under subject %q at %s: %w", subject, registryURL, err)
	}
	return id, nil
}

// errUnknownID wraps the registry's answer that it has no such id.
var errUnknownID = errors.New("unknown to the registry")

// SchemaByID fetches the text of the schema the registry knows as id; its
// errors wrap errUnknownID (404) or ErrRegistryUnavailable (anything else).
type SchemaByID func(ctx context.Context, id int) (string, error)

// RegistrySchemas looks schemas up by id in the registry at registryURL.
func RegistrySchemas(registryURL string) (SchemaByID, error) {
	client, err := registry.NewClient(registryURL)
	if err != nil {
		return nil, fmt.Errorf("schema registry url %q: %w", registryURL, err)
	}
	return func(ctx context.Context, id int) (string, error) {
		s, err := client.GetSchema(ctx, id)
		if err != nil {
			var rerr registry.Error
			if errors.As(err, &rerr) && rerr.StatusCode == http.StatusNotFound {
				return "", fmt.Errorf("fetch schema id %d from %s: %w: %w", id, registryURL, errUnknownID, err)
			}
			return "", fmt.Errorf("fetch schema id %d from %s: %w: %w", id, registryURL, ErrRegistryUnavailable, err)
		}
		return s.String(), nil
	}, nil
}
