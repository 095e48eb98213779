package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the accepted suffixes, matched without regard to case:
// decimal units count in powers of 1000 as their SI names say, binary ones in
// powers of 1024. A bare K, M or G is refused because people mean both.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"tb":  1000 * 1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

var errNotSize = errors.New("not a size")

// parseSize reads a byte count: "1073741824", "512MiB", "1 GB".
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	if i == 0 {
		return 0, errNotSize
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, errNotSize
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok || n > math.MaxInt64/mult {
		return 0, errNotSize
	}
	return n * mult, nil
}

// formatSize prints n with the largest binary unit that divides it exactly,
// so defaults read as 1GiB rather than 1073741824.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		bytes  int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.bytes == 0 {
			return strconv.FormatInt(n/u.bytes, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
