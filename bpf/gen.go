package bpf

// Generated output is committed so that `go build` needs no clang; `make
// generate` rebuilds it with Debian's clang and TestGeneratedUpToDate fails
// when the committed files no longer match the C source.
//
//go:generate go tool bpf2go -cc clang -target amd64 -type sock_event -type record_header -type inventory_entry -type uid_budget -type capture_config -type record_kind -type option_bits -type capture_flags -type drop_reason -type kind_drop_reason -type limits -type layout_version -type req_family_none bindwatch bindwatch.c -- -I/usr/include/x86_64-linux-gnu -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Werror
