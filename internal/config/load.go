package config

import (
	"errors"
	"fmt"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// Load builds the configuration from its layers, each overriding the one
// before: Defaults, the YAML file at path (none when path is empty), the
// BINDWATCH_* variables of environ (os.Environ() in production), and the
// flags of fs that RegisterFlags added and the command line set (fs may be
// nil). It refuses unknown keys and variables and bad values, reporting all
// of them at once, each naming the key, the value, what is allowed and
// which layer set it. A bad value is refused even where a higher layer
// overrides it: a file that is wrong stays wrong. Load's checks are
// Validate's.
func Load(path string, environ []string, fs *pflag.FlagSet) (*Config, error) {
	ko := koanf.New(".")
	defaults := Defaults()
	base := make(map[string]any, len(keys))
	for _, k := range keys {
		base[k.name] = valueOf(k, &defaults)
	}
	if err := ko.Load(confmap.Provider(base, "."), nil); err != nil {
		return nil, fmt.Errorf("config: loading defaults: %w", err)
	}

	sources := make(map[string]string)
	var errs []error
	// merge loads the values of one layer that decode and pass their key's
	// check, and records their source; the others become errors naming the
	// source and are not merged, so they cannot set off more errors.
	merge := func(values map[string]any, source func(key string) string) error {
		good := make(map[string]any, len(values))
		for _, k := range keys {
			name := k.name
			raw, set := values[name]
			if !set {
				continue
			}
			scratch := Defaults()
			e := decode(k, raw, &scratch)
			if e == nil {
				e = checkKey(name, &scratch)
			}
			if e != nil {
				e.Source = source(name)
				errs = append(errs, e)
				continue
			}
			good[name] = raw
			sources[name] = source(name)
		}
		return ko.Load(confmap.Provider(good, "."), nil)
	}

	if path != "" {
		b, err := file.Provider(path).ReadBytes()
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		tree, err := yaml.Parser().Unmarshal(b)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
		leaves, treeErrs := fileLeaves(tree, path)
		errs = append(errs, treeErrs...)
		if err := merge(leaves, func(string) string { return "in " + path }); err != nil {
			return nil, fmt.Errorf("config: merging %s: %w", path, err)
		}
	}

	envValues, envSources, unknownVars := envLayer(environ)
	if err := merge(envValues, func(key string) string { return envSources[key] }); err != nil {
		return nil, fmt.Errorf("config: merging the environment: %w", err)
	}

	if fs != nil {
		fk := koanf.New(".")
		if err := fk.Load(flagProvider(fs, ko), nil); err != nil {
			return nil, fmt.Errorf("config: reading flags: %w", err)
		}
		if err := merge(fk.All(), func(key string) string { return "from --" + key }); err != nil {
			return nil, fmt.Errorf("config: merging flags: %w", err)
		}
	}

	var c Config
	for _, k := range keys {
		if e := decode(k, ko.Get(k.name), &c); e != nil {
			// Every merged value decoded once already; this is a bug.
			return nil, fmt.Errorf("config: %s: merged value does not decode: %w", k.name, e)
		}
	}
	// Each value passed its own key's check in merge (and defaults are
	// valid), so what is left of Validate is what spans keys.
	for _, e := range c.checkAcross() {
		var fe *FieldError
		if errors.As(e, &fe) {
			fe.Source = sources[fe.Key]
		}
		errs = append(errs, e)
	}
	errs = append(errs, unknownEnv(unknownVars, c.Kafka.SASL.PasswordEnv)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}
