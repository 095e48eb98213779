package enrich

import (
	"strconv"
	"strings"
)

// ifaceName is one interface of a network namespace.
type ifaceName struct {
	index uint32
	name  string
}

// parseIgmp6 reads /proc/<pid>/net/igmp6: "<index> <name> <group> ..." per
// joined IPv6 multicast group. Every device with IPv6 state joins ff02::1
// when registered, even while down, so this lists nearly every interface.
func parseIgmp6(data string) []ifaceName {
	return parseIndexedLines(data, 0, 1, 10)
}

// parseIfInet6 reads /proc/<pid>/net/if_inet6: "<addr> <index hex> <plen>
// <scope> <flags> <name>" per IPv6 address.
func parseIfInet6(data string) []ifaceName {
	return parseIndexedLines(data, 1, 5, 16)
}

// parseIgmp reads /proc/<pid>/net/igmp. Device lines ("<index>\t<name> :
// <count> <querier>") start with the index; their group lines start with a
// tab, and a header line with "Idx". It lists devices that are up with IPv4,
// which covers hosts booted with IPv6 disabled.
func parseIgmp(data string) []ifaceName {
	var out []ifaceName
	for _, line := range strings.Split(data, "\n") {
		if line == "" || line[0] < '0' || line[0] > '9' {
			continue
		}
		out = appendIndexed(out, strings.Fields(line), 0, 1, 10)
	}
	return out
}

func parseIndexedLines(data string, indexField, nameField, base int) []ifaceName {
	var out []ifaceName
	for _, line := range strings.Split(data, "\n") {
		out = appendIndexed(out, strings.Fields(line), indexField, nameField, base)
	}
	return out
}

func appendIndexed(out []ifaceName, fields []string, indexField, nameField, base int) []ifaceName {
	if len(fields) <= indexField || len(fields) <= nameField {
		return out
	}
	idx, err := strconv.ParseUint(fields[indexField], base, 32)
	if err != nil || idx == 0 {
		return out
	}
	name := fields[nameField]
	// Consecutive lines repeat an interface once per group or address.
	if n := len(out); n > 0 && out[n-1].index == uint32(idx) && out[n-1].name == name {
		return out
	}
	return append(out, ifaceName{index: uint32(idx), name: name})
}

// ParseNetNSLink reads the target of a /proc/<pid>/ns/net link, "net:[N]",
// where N is the namespace's inode number as the BPF program records it.
func ParseNetNSLink(target string) (uint32, bool) {
	rest, ok := strings.CutPrefix(target, "net:[")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}
