# bindwatch: see README.md. `make demo` and `make test` first install what
# they need on a fresh Debian 12 machine (.ci/install-deps: the Go toolchain
# go.mod names, Debian packages, promtool), then run.

# The go to use comes first on PATH: PATH's own when it is go.mod's version,
# else /usr/local/go/bin, where .ci/install-go puts it. sudo resets PATH to
# one without /usr/local/go/bin, and Debian's /usr/bin/go is 1.19. Scripts
# and tests that run `go` find the same one. promtool, unpacked from
# Debian's prometheus package by .ci/install-deps, is on PATH too.
export PATH := $(shell .ci/install-go --which):$(CURDIR)/.cache/prometheus/usr/bin:$(PATH)

GO       ?= go
BIN      := bin
PKGS     := ./...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build generate test test-go test-vm lint demo deps demo-deps install release package man clean

PREFIX     ?= /usr
UNITDIR    ?= /lib/systemd/system

all: build

build:
	$(GO) build -o $(BIN)/bindwatch ./cmd/bindwatch
	$(GO) build -o $(BIN)/devkafka ./cmd/devkafka

# The manual pages, bindwatch.1 and bindwatch-COMMAND.1 for each command,
# written by the binary (cobra/doc) into MANDIR, dated by the last commit
# so that they are reproducible.
MANDIR ?= $(BIN)/man
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)

man: build
	rm -rf $(MANDIR)
	SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' $(BIN)/bindwatch gen-man $(MANDIR)

# Rebuild the BPF object and its Go bindings with Debian's clang; the output
# is committed so that `go build` needs no clang.
generate:
	$(GO) generate ./bpf/

# Every tier: lint, unit and native tests (native ones need root; the
# packages and the alert rules are tested here too), and the capture tests
# inside a Debian 6.1 kernel under qemu, once per hook. The tiers run after
# deps, never beside it, even under make -j.
test: deps
	@$(MAKE) --no-print-directory lint test-go test-vm

# Then: nothing bindwatch loaded may be left in the kernel (test/kernelclean).
test-go:
	$(GO) test -count=1 $(PKGS)
	$(GO) run ./test/kernelclean

# The capture tests, and the unit's capability set, on each hook of 6.1.
test-vm:
	BINDWATCH_VM_PACKAGES="./bpf ./systemd" test/vm/run.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# The agent against devkafka for a few binds, then the topic read back.
demo: demo-deps
	@$(MAKE) --no-print-directory build
	test/demo.sh

# The binary, the unit with its sysusers and tmpfiles files, the configuration
# (kept if present), the spool directory and the manual pages. Then: systemd-sysusers,
# systemd-tmpfiles --create, systemctl enable --now bindwatch.
install: build man
	install -D -m 0755 $(BIN)/bindwatch $(DESTDIR)$(PREFIX)/bin/bindwatch
	install -D -m 0644 systemd/bindwatch.service $(DESTDIR)$(UNITDIR)/bindwatch.service
	install -D -m 0644 systemd/bindwatch-unpin.service $(DESTDIR)$(UNITDIR)/bindwatch-unpin.service
	install -D -m 0644 systemd/bindwatch-unpin.timer $(DESTDIR)$(UNITDIR)/bindwatch-unpin.timer
	install -D -m 0644 systemd/bindwatch.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/bindwatch.conf
	install -D -m 0644 systemd/bindwatch.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/bindwatch.conf
	install -d -m 0755 $(DESTDIR)/etc/bindwatch
	[ -e $(DESTDIR)/etc/bindwatch/bindwatch.yaml ] || install -m 0644 configs/bindwatch.yaml $(DESTDIR)/etc/bindwatch/bindwatch.yaml
	install -d -m 0700 $(DESTDIR)/var/lib/bindwatch/spool
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/man/man1 $(MANDIR)/*.1

# The .deb and the .rpm (PACKAGERS) in $(PKGDIR), built by nfpm (go tool
# nfpm, pinned in go.mod) from deploy/nfpm.yaml: a static binary stamped
# with PKG_VERSION, the unit, its sysusers and tmpfiles files, the
# configuration as a conffile, the manual pages (gzipped, as Debian and
# Fedora ship them) and the maintainer scripts in deploy/package/.
# Untagged commits get 0.0.0~git<commits since the root>.<hash>, which sorts
# before any release and rises with every commit. deploy/package_test.go
# installs, upgrades and removes them in a container.
PKGDIR      ?= $(BIN)/pkg
PACKAGERS   ?= deb rpm
PKG_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null); \
	if [ -n "$$v" ]; then echo "$${v#v}" | sed 's/-\([0-9]*\)-g/+git\1./'; \
	else echo "0.0.0~git$$(git rev-list --count HEAD).$$(git rev-parse --short HEAD)"; fi)

# The binary as it ships: static (no libc mapped beside it), no symbol
# table, no local paths. test/overhead.sh measures this build.
release:
	.ci/install-go
	mkdir -p $(PKGDIR)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(PKG_VERSION)" -o $(PKGDIR)/bindwatch ./cmd/bindwatch

package: release
	rm -rf $(PKGDIR)/man
	SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' $(PKGDIR)/bindwatch gen-man $(PKGDIR)/man
	gzip -9n $(PKGDIR)/man/*.1
	for p in $(PACKAGERS); do \
		BINDWATCH_PKG_VERSION='$(PKG_VERSION)' BINDWATCH_PKG_BIN='$(PKGDIR)/bindwatch' BINDWATCH_PKG_MAN='$(PKGDIR)/man' \
			$(GO) tool nfpm package --config deploy/nfpm.yaml --packager $$p --target $(PKGDIR)/ || exit 1; \
	done

# What the tests use: the Go toolchain (from the Go module proxy), Debian's
# packages, promtool. Idempotent; a second or so when all is there.
deps:
	.ci/install-deps

# What the demo uses: the Go toolchain and python3.
demo-deps:
	.ci/install-deps --demo

clean:
	rm -rf $(BIN)
