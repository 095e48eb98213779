# bindwatch: see README.md. Every target works on a fresh Debian 12 machine
# once .ci/run (or `make deps`) has installed the packages listed there.

GO       ?= go
BIN      := bin
PKGS     := ./...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build generate test test-go test-vm lint demo deps install clean

PREFIX     ?= /usr
UNITDIR    ?= /lib/systemd/system

all: build

build:
	$(GO) build -o $(BIN)/bindwatch ./cmd/bindwatch
	$(GO) build -o $(BIN)/devkafka ./cmd/devkafka

# Rebuild the BPF object and its Go bindings with Debian's clang; the output
# is committed so that `go build` needs no clang.
generate:
	$(GO) generate ./bpf/

# Every tier: lint, unit and native tests (native ones need root), and the
# capture tests inside a Debian 6.1 kernel under qemu, once per hook.
test: lint test-go test-vm

test-go:
	$(GO) test -count=1 $(PKGS)

# The capture tests, and the unit's capability set, on each hook of 6.1.
test-vm:
	BINDWATCH_VM_PACKAGES="./bpf ./systemd" test/vm/run.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# A few seconds of `bindwatch snoop` while a few binds happen.
demo: build
	test/demo.sh

# The binary, the unit with its sysusers and tmpfiles files, the configuration
# (kept if present) and the spool directory. Then: systemd-sysusers,
# systemd-tmpfiles --create, systemctl enable --now bindwatch.
install: build
	install -D -m 0755 $(BIN)/bindwatch $(DESTDIR)$(PREFIX)/bin/bindwatch
	install -D -m 0644 systemd/bindwatch.service $(DESTDIR)$(UNITDIR)/bindwatch.service
	install -D -m 0644 systemd/bindwatch.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/bindwatch.conf
	install -D -m 0644 systemd/bindwatch.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/bindwatch.conf
	install -d -m 0755 $(DESTDIR)/etc/bindwatch
	[ -e $(DESTDIR)/etc/bindwatch/bindwatch.yaml ] || install -m 0644 configs/bindwatch.yaml $(DESTDIR)/etc/bindwatch/bindwatch.yaml
	install -d -m 0700 $(DESTDIR)/var/lib/bindwatch/spool

# Debian packages the build, the tests and the demo use.
deps:
	.ci/install-deps

clean:
	rm -rf $(BIN)
