package config

import (
	"strings"
)

// suggest returns the known key or section a mistyped name most likely
// meant, quoted, or "" when none is close. Two kinds of mistakes are common:
// a typo (kafka.tls.cafile), caught by edit distance, and a right name in the
// wrong section (kafka.batch_size), caught by the last segment.
func suggest(name string) string {
	return closest(name, append(Keys(), sections()...))
}

// closest picks from candidates by the two rules of suggest.
func closest(name string, candidates []string) string {
	best, bestDist := "", max(2, len(name)/4)+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return `"` + best + `"`
	}
	last := name[strings.LastIndex(name, ".")+1:]
	var same []string
	for _, c := range candidates {
		if c != name && c[strings.LastIndex(c, ".")+1:] == last {
			same = append(same, `"`+c+`"`)
		}
	}
	return strings.Join(same, " or ")
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each cost one, so
// "kafak" is one step from "kafka".
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
