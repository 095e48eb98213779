package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	agentconfig "github.com/bindwatch/bindwatch/internal/config"
)

// Error is one refused key.
type Error struct {
	File    string
	Line    int
	Key     string
	Problem string
}

func (e *Error) Error() string {
	return fmt.Sprintf("audit config: %s:%d: %s: %s", e.File, e.Line, e.Key, e.Problem)
}

// Load reads the file at path over the defaults; an empty path gives the
// defaults. Every problem is reported at once.
func Load(path string) (*Config, error) {
	c := Defaults()
	if path == "" {
		return &c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit config: %w", err)
	}
	if err := Parse(path, b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Parse reads a file's text into c.
func Parse(file string, text []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return fmt.Errorf("audit config: %s: %w", file, err)
	}
	var errs []error
	fail := func(n *yaml.Node, key, format string, args ...any) {
		errs = append(errs, &Error{File: file, Line: n.Line, Key: key, Problem: fmt.Sprintf(format, args...)})
	}
	var walk func(n *yaml.Node, section string)
	walk = func(n *yaml.Node, section string) {
		if n.Kind != yaml.MappingNode {
			if n.Tag != "!!null" {
				fail(n, section, "want a section with keys %s", strings.Join(children(section), ", "))
			}
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			full := kn.Value
			if section != "" {
				full = section + "." + kn.Value
			}
			if k, ok := lookup(full); ok {
				if err := set(k, vn, c); err != nil {
					fail(vn, full, "%s", err)
				}
				continue
			}
			if isSection(full) {
				walk(vn, full)
				continue
			}
			where := "at the top"
			if section != "" {
				where = "in " + section
			}
			fail(kn, full, "unknown key; allowed %s: %s", where, strings.Join(children(section), ", "))
		}
	}
	if len(doc.Content) > 0 {
		walk(doc.Content[0], "")
	}
	errs = append(errs, check(file, c)...)
	return errors.Join(errs...)
}

func set(k key, n *yaml.Node, c *Config) error {
	p := k.field(c)
	if k.kind == kindMap {
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return nil
			}
			return errors.New("want a map of host_id: key")
		}
		var m map[string]string // {} is the default: none
		for i := 0; i+1 < len(n.Content); i += 2 {
			if m == nil {
				m = map[string]string{}
			}
			if n.Content[i+1].Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: want a base64 key", n.Content[i].Value)
			}
			m[n.Content[i].Value] = n.Content[i+1].Value
		}
		*p.(*map[string]string) = m
		return nil
	}
	if k.kind == kindList {
		var items []string
		switch n.Kind {
		case yaml.SequenceNode:
			for _, e := range n.Content {
				items = append(items, e.Value)
			}
		case yaml.ScalarNode:
			items = strings.Split(n.Value, ",")
		default:
			return errors.New("want a list")
		}
		*p.(*[]string) = items
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want %s", want(k.kind))
	}
	s := n.Value
	switch k.kind {
	case kindString:
		switch p := p.(type) {
		case *string:
			*p = s
		case *agentconfig.SASLMechanism:
			if !slices.Contains(saslValues, s) {
				return fmt.Errorf("%q is not allowed; want one of %s", s, strings.Join(saslValues, ", "))
			}
			*p = agentconfig.SASLMechanism(s)
		}
	case kindBool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not allowed; want true or false", s)
		}
		*p.(*bool) = v
	case kindInt:
		v, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not allowed; want a whole number", s)
		}
		*p.(*int) = v
	case kindDuration:
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			return fmt.Errorf("%q is not allowed; want a duration such as 10s", s)
		}
		*p.(*time.Duration) = v
	}
	return nil
}

func want(k kind) string {
	switch k {
	case kindBool:
		return "true or false"
	case kindInt:
		return "a whole number"
	case kindDuration:
		return "a duration such as 10s"
	}
	return "a value"
}

// check validates values that parsed.
func check(file string, c *Config) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{File: file, Key: key, Problem: fmt.Sprintf(format, args...)})
	}
	if len(c.Brokers) == 0 {
		bad("kafka.brokers", "empty; want host:port of at least one broker")
	}
	for _, t := range []struct{ key, v string }{
		{"audit.group", c.Group}, {"audit.events_topic", c.EventsTopic}, {"audit.state_topic", c.StateTopic}, {"audit.findings_topic", c.FindingsTopic},
	} {
		if strings.TrimSpace(t.v) == "" {
			bad(t.key, "empty")
		}
	}
	if t := c.OCSFTopic; t != "" && (t == c.EventsTopic || t == c.StateTopic || t == c.FindingsTopic) {
		bad("audit.ocsf_topic", "%q is another of the audit's topics; want a topic of its own, or empty", t)
	}
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		bad("audit.batch_size", "%d is not allowed; want 1 to 100000", c.BatchSize)
	}
	if c.SessionTimeout < time.Second {
		bad("audit.session_timeout", "%s is not allowed; want at least 1s", c.SessionTimeout)
	}
	if c.HostExpiry < MinHostExpiry || c.HostExpiry > MaxHostExpiry {
		bad("audit.host_expiry", "%s is not allowed; want %s to %s (a day to 90 days)", c.HostExpiry, MinHostExpiry, MaxHostExpiry)
	}
	if c.MaxHosts < MinMaxHosts || c.MaxHosts > MaxMaxHosts {
		bad("audit.max_hosts", "%d is not allowed; want %d to %d hosts per partition", c.MaxHosts, MinMaxHosts, MaxMaxHosts)
	}
	if c.MaxListeners < MinMaxListeners || c.MaxListeners > MaxMaxListeners {
		bad("audit.max_listeners", "%d is not allowed; want %d to %d listeners per host", c.MaxListeners, MinMaxListeners, MaxMaxListeners)
	}
	if _, err := c.PublicKeys(); err != nil {
		bad("audit.host_keys", "%s", err)
	}
	if !slices.Contains(logLevelValues, c.LogLevel) {
		bad("log.level", "%q is not allowed; want one of %s", c.LogLevel, strings.Join(logLevelValues, ", "))
	}
	return errs
}
