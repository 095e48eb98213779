package bpf

// Generated output is committed so that `go build` needs no clang; `make
// generate` rebuilds it with Debian's clang and TestGeneratedUpToDate fails
// when the committed files no longer match the C source.
//
//go:generate go tool bpf2go -cc clang -target bpfel -type bind_event -type capture_config bindwatch bindwatch.c -- -I/usr/include/x86_64-linux-gnu -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Werror
