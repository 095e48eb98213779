package policy

// How each match key's value is read and checked: labels, digests,
// container ids, port ranges and addresses. parse.go walks the rules and
// calls these for the keys it meets.

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// labels reads pod_labels: a map of label name to a glob or a list of
// globs.
func (p *parser) labels(v *yaml.Node, key string) []labelSel {
	if v.Kind != yaml.MappingNode {
		p.fail(v, key, "want a map of label to glob (app: web), not a %s; every label must match", kindName(v))
		return nil
	}
	if len(v.Content) == 0 {
		p.fail(v, key, "empty map: leave the key out to match everything")
		return nil
	}
	var out []labelSel
	for k, lv := range pairs(v) {
		lkey := key + "." + k.Value
		if k.Kind != yaml.ScalarNode || !isLabelName(k.Value) {
			p.fail(k, key, "%q is not a label name (want [prefix/]name: a DNS subdomain prefix, a name of 1-63 letters, digits, '-', '_', '.')", k.Value)
			continue
		}
		vals := p.values(lv, lkey)
		if vals == nil {
			continue
		}
		sel := labelSel{name: k.Value}
		for _, s := range vals {
			g, err := newGlob(s.Value)
			if err != nil {
				p.fail(s, lkey, "%q is not a glob: %v", s.Value, err)
				continue
			}
			sel.values = append(sel.values, g)
		}
		out = append(out, sel)
	}
	return out
}

// isLabelName says whether s is a Kubernetes label key: an optional DNS
// subdomain prefix and a slash, then a name of at most 63 characters,
// alphanumeric at both ends, '-', '_' and '.' between.
func isLabelName(s string) bool {
	prefix, name, hasPrefix := strings.Cut(s, "/")
	if !hasPrefix {
		prefix, name = "", s
	} else if prefix == "" || len(prefix) > 253 || strings.Trim(prefix, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" {
		return false
	}
	if name == "" || len(name) > 63 || !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

// isDigest says whether s is an image digest: sha256:<64 hex> or
// sha512:<128 hex>.
func isDigest(s string) bool {
	algo, hex, _ := strings.Cut(s, ":")
	switch strings.ToLower(algo) {
	case "sha256":
		return len(hex) == 64 && isHex(hex)
	case "sha512":
		return len(hex) == 128 && isHex(hex)
	}
	return false
}

func noneHint(key string) string {
	if key == "cgroup_owner_uid" {
		return ", or none for a root-owned cgroup"
	}
	return ""
}

func (p *parser) container(s *yaml.Node, key string) containerSel {
	v := s.Value
	switch {
	case v == "none":
		return containerSel{kind: selNone}
	case v == "any":
		return containerSel{kind: selAny}
	case slices.Contains(runtimes, strings.ToLower(v)):
		return containerSel{kind: selRuntime, value: v}
	case isHexPrefix(v):
		return containerSel{kind: selPrefix, value: strings.ToLower(v)}
	}
	p.fail(s, key, "%q is not a container (want none, any, a runtime (%s) or a hex id prefix)", v, quoteList(runtimes))
	return containerSel{kind: selPrefix, value: "\x00"}
}

func isHexPrefix(s string) bool { return len(s) <= 64 && isHex(s) }

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// portRange reads a port, "a-b" or ephemeral.
func (p *parser) portRange(n *yaml.Node, key, s string, eph [2]int) (portRange, bool) {
	bad := func() (portRange, bool) {
		p.fail(n, key, "%q is not a port (want 0-65535, a range \"a-b\" or ephemeral)", s)
		return portRange{}, false
	}
	if s == "ephemeral" {
		return portRange{eph[0], eph[1]}, true
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePort(lo)
	if err != nil {
		return bad()
	}
	if !isRange {
		return portRange{a, a}, true
	}
	b, err := parsePort(hi)
	if err != nil || b < a {
		return bad()
	}
	return portRange{a, b}, true
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 65535 {
		return 0, errors.New("not a port")
	}
	return n, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return pfx, err
		}
		if pfx.Addr().Is4In6() {
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
