# bindwatch as a container image: a static binary on distroless.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t bindwatch .
#
# The BPF object is committed (bpf/bindwatch_bpfel.o), so the build needs Go
# and nothing else: no clang, no kernel headers, no network but the module
# proxy. It is built for x86-64 only: the kprobe programs are compiled with
# __TARGET_ARCH_x86 (bpf/gen.go).
#
# Running it: a host agent, not an application container
# -----------------------------------------------------
# It must see the host's processes, cgroups and network, load BPF programs
# and read tracefs. Everything below replaces --privileged, which it does
# not need:
#
#   docker run -d --name bindwatch --restart=on-failure \
#     --pid=host --cgroupns=host --network=host --uts=host \
#     --cap-drop=ALL --cap-add=BPF --cap-add=PERFMON \
#     --security-opt=no-new-privileges \
#     --security-opt=apparmor=unconfined \
#     --read-only \
#     -v /sys/kernel/tracing:/sys/kernel/tracing:ro \
#     -v /sys/fs/bpf:/sys/fs/bpf \
#     -v /etc/machine-id:/etc/machine-id:ro \
#     -v /etc/bindwatch:/etc/bindwatch:ro \
#     -v bindwatch-spool:/var/lib/bindwatch \
#     -e BINDWATCH_KAFKA_BROKERS=kafka1:9092,kafka2:9092 \
#     bindwatch
#
# Why each:
#   --pid=host        events carry host pids; the agent reads /proc/<pid>/
#                     of every process. The container's /proc is then the
#                     host's pid namespace: no separate /proc mount needed.
#   --cgroupns=host   /proc/<pid>/cgroup paths and /sys/fs/cgroup (mounted
#                     read-only by Docker) as the host sees them, so cgroup
#                     ids resolve to container ids.
#   --network=host    the agent names interfaces of its own network namespace
#                     over netlink (most binds are in the host's), and
#                     /metrics on 127.0.0.1:9464 is the host's loopback.
#   --uts=host        the hostname events carry is the host's, not the
#                     container's (or set BINDWATCH_HOST_NAME).
#   --cap-drop=ALL --cap-add=BPF --cap-add=PERFMON
#                     maps and programs (CAP_BPF); tracing programs, reading
#                     kernel memory and perf events (CAP_PERFMON). Linux 5.8+.
#                     Nothing else: tracefs and bpffs are mounted by the host
#                     (no CAP_SYS_ADMIN), BPF memory is charged to the memory
#                     cgroup on 5.11+ (no CAP_SYS_RESOURCE; on 5.8-5.10 add
#                     --ulimit memlock=-1:-1). On Debian and Ubuntu hosts,
#                     kernel.perf_event_paranoid 3 (their default) refuses
#                     the kprobe and tracepoint hooks' perf events without
#                     CAP_SYS_ADMIN; fexit is unaffected. Set it to 2 on the
#                     host if those hooks are needed. Docker's default seccomp
#                     profile allows bpf() with CAP_BPF and perf_event_open()
#                     with CAP_PERFMON; engines too old for that rule allow
#                     them only with CAP_SYS_ADMIN: give those a seccomp
#                     profile that adds the two calls, not --privileged.
#   apparmor=unconfined
#                     docker-default denies writes under /sys/fs/ (but
#                     cgroup), which refuses pinning in /sys/fs/bpf. A profile
#                     of your own that allows /sys/fs/bpf/bindwatch/** is
#                     better; without either, drop this and the /sys/fs/bpf
#                     mount: the agent runs unpinned and a restart loses the
#                     binds made while it is down. No AppArmor: drop it.
#   /sys/kernel/tracing  the tracepoint and kprobe hooks read event ids there;
#                     a container's /sys has only an empty mount point. Hosts
#                     without it mounted: -v /sys/kernel/debug:/sys/kernel/debug:ro
#                     (tracefs under debugfs), or mount it on the host.
#   /sys/fs/bpf       the host's bpffs, where pinned maps and links outlive
#                     the container, so a restart loses no binds.
#   /etc/machine-id   the host id every event carries; boot_id comes from
#                     /proc/sys/kernel/random/boot_id, which is the host's.
#   /etc/bindwatch    the configuration (bindwatch.yaml, TLS files). The
#                     image has the annotated default; BINDWATCH_* variables
#                     override either (see configs/bindwatch.yaml).
#   bindwatch-spool   spool.dir (/var/lib/bindwatch/spool): events wait here
#                     while Kafka is unreachable. A volume, so it survives
#                     the container; --read-only keeps everything else.
#
# Why root (uid 0) and not a non-root user: Docker gives --cap-add
# capabilities to uid 0 only. A non-root user gets them only through file
# capabilities on the binary, which --security-opt=no-new-privileges disables
# (moby/moby#8460: ambient capabilities were added in 1.13 and reverted).
# With every other capability dropped, uid 0 here can do what the systemd
# unit's non-root user can: the files it owns on the host are in the mounts
# above, all read-only but the spool and /sys/fs/bpf; it cannot ptrace host
# root processes (their capabilities are not a subset of its own). Under
# user-namespace remapping (userns-remap) CAP_BPF does not reach the kernel
# at all; run it with --userns=host there. Where the engine sets ambient
# capabilities for --cap-add, run it as --user 65532:65532 after
# `bindwatch grant-access --group 65532` as root on the host (tracefs and
# bpffs are mode 0700 root), as the systemd unit does; never
# --cap-add=DAC_READ_SEARCH, which reads any file. /sys/fs/bpf/bindwatch
# must then belong to 65532.
#
# Signals: SIGTERM drains to Kafka for up to shutdown.timeout (10s): give
# docker stop more (--stop-timeout=30, or stop_grace_period in compose).
# SIGHUP (docker kill -s HUP bindwatch) rereads the configuration.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Static (no cgo: distroless/static has no libc), no local paths in the
# binary (-trimpath), no symbol tables (-s -w), the version stamped in. The
# context has no .git, hence -buildvcs=false: put the revision in VERSION.
RUN CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false \
        -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/usr/bin/bindwatch ./cmd/bindwatch \
    && mkdir -p /out/etc/bindwatch /out/var/lib/bindwatch/spool \
    && cp configs/bindwatch.yaml /out/etc/bindwatch/bindwatch.yaml \
    && chmod 0700 /out/var/lib/bindwatch /out/var/lib/bindwatch/spool

# linux/amd64 whatever the build host: the binary is x86-64 (see above).
# Pin the digest (static-debian12@sha256:...) in release builds.
FROM --platform=linux/amd64 gcr.io/distroless/static-debian12
COPY --from=build /out/ /
# See "Why root" above.
USER 0:0
ENTRYPOINT ["/usr/bin/bindwatch"]
CMD ["run", "--config", "/etc/bindwatch/bindwatch.yaml"]
