package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/bindwatch/bindwatch/schemas/codec"
)

// schemaIDsFile, in the spool directory (the agent's state; the spool ignores
// files that are not its own), remembers the ids the registry gave.
const schemaIDsFile = "schema-registry-ids.json"

// registerTimeout bounds the registration at start.
const registerTimeout = 15 * time.Second

// registerSchema returns the registry id of text under subject. When the
// registry cannot be reached it falls back to the id the same registry gave
// the same schema (by fingerprint) before: a registry outage must not keep
// the agent from starting and leave binds unrecorded. The messages carry the
// same id the registry would have answered.
func registerSchema(ctx context.Context, dir, url, subject, text string, log *slog.Logger) (int, error) {
	fp, err := codec.Fingerprint([]byte(text))
	if err != nil {
		return 0, err
	}
	key := fmt.Sprintf("%s %s %016x", url, subject, fp)
	path := filepath.Join(dir, schemaIDsFile)
	rctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	id, err := codec.Register(rctx, url, subject, text)
	if err == nil {
		if err := saveSchemaID(path, key, id); err != nil {
			log.Warn("remembering the schema id", "component", "agent", "path", path, "error", err)
		}
		return id, nil
	}
	ids, loadErr := loadSchemaIDs(path)
	if cached, ok := ids[key]; ok && loadErr == nil {
		log.Warn("schema registry unreachable; using the id it gave this schema before",
			"component", "agent", "registry", url, "subject", subject, "id", cached, "error", err)
		return cached, nil
	}
	return 0, err
}

func loadSchemaIDs(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, err
	}
	ids := map[string]int{}
	if err := json.Unmarshal(b, &ids); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

// saveSchemaID records key's id, replacing the file atomically.
func saveSchemaID(path, key string, id int) error {
	ids, err := loadSchemaIDs(path)
	if err != nil {
		ids = map[string]int{} // a damaged file is rewritten
	}
	if ids[key] == id {
		return nil
	}
	ids[key] = id
	b, err := json.MarshalIndent(ids, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
