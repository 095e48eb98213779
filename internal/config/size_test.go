package config

import (
	"math"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // -1: refused
	}{
		{"0", 0},
		{"4096", 4096},
		{"512MiB", 512 << 20},
		{"512mib", 512 << 20},
		{"1GiB", 1 << 30},
		{"1 GiB", 1 << 30},
		{" 2TiB ", 2 << 40},
		{"64KiB", 64 << 10},
		{"1GB", 1e9},
		{"1gb", 1e9},
		{"3kB", 3000},
		{"5MB", 5e6},
		{"7B", 7},
		{"1G", -1},     // a bare G means 1e9 to some, 2^30 to others
		{"1.5GiB", -1}, // fractions of a unit are refused, not rounded
		{"-1", -1},
		{"", -1},
		{"GiB", -1},
		{"lots", -1},
		{"8EiB", -1},
		{"9223372036854775807", math.MaxInt64},
		{"9223372036854775808", -1},
		{"8388608TiB", -1}, // 2^63: overflows
	} {
		got, err := parseSize(tc.in)
		switch {
		case tc.want < 0 && err == nil:
			t.Errorf("parseSize(%q) = %d, want an error", tc.in, got)
		case tc.want >= 0 && (err != nil || got != tc.want):
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{4096, "4KiB"},
		{5000, "5000"},
		{1 << 20, "1MiB"},
		{3 << 29, "1536MiB"},
		{1 << 30, "1GiB"},
		{1e9, "1000000000"},
		{5 << 40, "5TiB"},
	} {
		if got := formatSize(tc.in); got != tc.want {
			t.Errorf("formatSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := parseSize(formatSize(tc.in)); err != nil || back != tc.in {
			t.Errorf("parseSize(formatSize(%d)) = %d, %v", tc.in, back, err)
		}
	}
}
