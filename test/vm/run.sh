#!/usr/bin/env bash
# Runs this project's Go test binaries inside Debian's 6.1 kernel under qemu
# (software emulation), where fexit, kprobe and tracepoint hooks all attach.
#
#   test/vm/run.sh [test binary flags...]     e.g. -test.run TestCapture/UDP
#
# Environment (defaults in brackets):
#   BINDWATCH_VM_PACKAGES  packages or directories to test [./bpf]
#   BINDWATCH_VM_CACHE     kernel cache and run logs [<repo>/.cache/vm]
#   BINDWATCH_VM_TIMEOUT   seconds before the guest is killed [600]
#   BINDWATCH_VM_KERNEL    Debian kernel package [what linux-image-amd64 depends on]
#   BINDWATCH_VM_MODULES   kernel modules to load, deps resolved [crc32c_generic sctp dummy veth]
#   BINDWATCH_VM_SMP       guest vCPUs [2]
#   BINDWATCH_TEST_HOOKS   passed to the guest's tests when set [fexit,kprobe,tracepoint]
#   BINDWATCH_BENCH_PEERS  passed to the guest's tests when set (peer tools BenchmarkBindLoop runs)
#   BINDWATCH_VM_FILES     host programs (and libraries) copied into the guest at their
#                          own paths, with the shared libraries ldd lists for them [none]
# Exits 0 only when the guest printed "BINDWATCH-VM-RESULT: PASS".
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${BINDWATCH_VM_CACHE:-$repo/.cache/vm}
packages=${BINDWATCH_VM_PACKAGES:-./bpf}
timeout_s=${BINDWATCH_VM_TIMEOUT:-600}
# sctp is a module in Debian's config and the capture tests bind SCTP
# sockets; libcrc32c (an sctp dependency) only names crc32c as a soft
# dependency, an alias the resolver below cannot follow, so it is listed.
# dummy and veth give tests interfaces to bind to by index and name.
modules=${BINDWATCH_VM_MODULES:-crc32c_generic sctp dummy veth}
smp=${BINDWATCH_VM_SMP:-2}
result_marker=BINDWATCH-VM-RESULT

say() { printf 'vm: %s\n' "$*" >&2; }
die() {
	printf 'vm: error: %s\n' "$*" >&2
	exit 1
}

[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "BINDWATCH_VM_TIMEOUT must be a positive number of seconds, not '$timeout_s'"
[[ $smp =~ ^[1-9][0-9]*$ ]] || die "BINDWATCH_VM_SMP must be a positive number, not '$smp'"

need() { # need COMMAND DEBIAN-PACKAGE
	command -v "$1" >/dev/null || die "$1 not found: install the Debian package $2 (.ci/install-deps does)"
}
need qemu-system-x86_64 qemu-system-x86
need cpio cpio
need gzip gzip
need timeout coreutils
need dpkg-deb dpkg
need apt-get apt
need go "Go (https://go.dev/dl)"

# --- kernel ------------------------------------------------------------------

kernel_package() {
	local dep
	dep=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
	if [[ -z $dep ]]; then
		# Reuse what is cached rather than require a network to run again.
		dep=$(find "$cache/kernels" -mindepth 2 -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null | sort -V | tail -n 1)
		dep=${dep##*/}
	fi
	if [[ -z $dep ]]; then
		say "apt knows no linux-image-amd64; running apt-get update"
		apt-get update -q >&2 || die "apt-get update failed (are you root?)"
		dep=$(apt-cache depends linux-image-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
	fi
	[[ -n $dep ]] || die "cannot find which linux-image package linux-image-amd64 depends on"
	printf '%s\n' "$dep"
}

pkg=${BINDWATCH_VM_KERNEL:-$(kernel_package)}
kdir=$cache/kernels/$pkg
if [[ ! -e $kdir/.complete ]]; then
	say "downloading $pkg into $kdir"
	mkdir -p "$cache/kernels"
	dl=$(mktemp -d "$cache/kernels/.download.XXXXXX")
	trap 'rm -rf "$dl"' EXIT
	apt_opts=()
	# apt drops to its _apt user to download, who cannot write a private temp dir.
	if ((EUID == 0)); then apt_opts=(-o APT::Sandbox::User=root); fi
	(cd "$dl" && apt-get download -q "${apt_opts[@]}" "$pkg") >&2 || die "apt-get download $pkg failed"
	say "extracting $(basename "$dl"/*.deb)"
	dpkg-deb -x "$dl"/*.deb "$dl/root"
	rm -rf "$kdir"
	mv "$dl/root" "$kdir"
	touch "$kdir/.complete"
	rm -rf "$dl"
	trap - EXIT
else
	say "using cached kernel $kdir"
fi
vmlinuz=$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)
[[ -n $vmlinuz ]] || die "no vmlinuz in $kdir/boot"
kver=${vmlinuz##*/vmlinuz-}
moddir=$kdir/lib/modules/$kver

# qemu boots an uncompressed vmlinux through its PVH entry point, which skips
# the bzImage's own XZ decompression: about 3 s of each boot under emulation.
boot_image=$kdir/vmlinux
if [[ ! -s $boot_image ]]; then
	boot_image=$vmlinuz
	if ! grep -q '^CONFIG_PVH=y' "$kdir/boot/config-$kver"; then
		say "kernel has no PVH entry point: booting the bzImage"
	elif ! command -v xz >/dev/null; then
		say "xz not found (Debian package xz-utils): booting the bzImage, about 3 s slower"
	else
		offset=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$vmlinuz" | awk -F: 'NR == 1 {print $1}')
		# xz stops at the end of the stream, so tail may die of SIGPIPE: only xz's status counts.
		if [[ -n $offset ]] && xz -dc --single-stream <(tail -c +$((offset + 1)) "$vmlinuz") >"$kdir/vmlinux.tmp" &&
			[[ $(head -c 4 "$kdir/vmlinux.tmp") == $'\x7fELF' ]]; then
			mv "$kdir/vmlinux.tmp" "$kdir/vmlinux"
			boot_image=$kdir/vmlinux
			say "extracted the uncompressed kernel for a PVH boot"
		else
			rm -f "$kdir/vmlinux.tmp"
			say "could not extract vmlinux from $vmlinuz: booting the bzImage"
		fi
	fi
fi

# --- payload -----------------------------------------------------------------

mkdir -p "$cache/runs"
run=$(mktemp -d "$cache/runs/$(date +%Y%m%d-%H%M%S).XXXX")
stage=$run/root
log=$run/console.log
# Keep the console logs of the last ten runs, not their initramfs.
trap 'rm -rf "$stage" "$run/initrd.gz"' EXIT
find "$cache/runs" -mindepth 1 -maxdepth 1 -type d | sort | head -n -10 | xargs -r rm -rf

mkdir -p "$stage/vm/tests"
cd "$repo"
say "building the guest init"
CGO_ENABLED=0 go build -trimpath -o "$stage/init" ./test/vm/guestinit

n=0
list_format='{{.Dir}}|{{.ImportPath}}|{{len .TestGoFiles}}|{{len .XTestGoFiles}}'
read -ra patterns <<<"$packages"
((${#patterns[@]})) || die "BINDWATCH_VM_PACKAGES names no package"
for pattern in "${patterns[@]}"; do
	# A directory is listed from inside it, so a package of another module
	# (a throwaway test under /tmp) builds with that module's go.mod.
	if [[ -d $pattern && $pattern != *...* ]]; then
		listing=$(go -C "$pattern" list -f "$list_format" .) || die "go list $pattern failed"
	else
		listing=$(go list -f "$list_format" "$pattern") || die "go list $pattern failed"
	fi
	while IFS='|' read -r dir importpath ntest nxtest; do
		((ntest + nxtest > 0)) || die "package $importpath has no test files: nothing to run"
		n=$((n + 1))
		name=${importpath##*/}
		dest=$stage/vm/tests/$(printf '%02d' "$n")-$name
		mkdir -p "$dest"
		say "building tests of $importpath"
		CGO_ENABLED=0 go -C "$dir" test -c -trimpath -o "$dest/$name.test" .
		[[ -x $dest/$name.test ]] || die "go test -c wrote no binary for $importpath"
		# Tests run in their package directory, as under go test.
		if [[ -d $dir/testdata ]]; then cp -a "$dir/testdata" "$dest/"; fi
	done <<<"$listing"
done

# The Go test timeout fires before the VM's, so a hung test dumps its
# goroutines instead of vanishing; later flags (the caller's) win.
if ((timeout_s > 120)); then test_timeout=$((timeout_s - 60)); else test_timeout=$((timeout_s / 2)); fi
printf '%s\0' "-test.timeout=${test_timeout}s" "$@" >"$stage/vm/args"
: >"$stage/vm/env"
for var in BINDWATCH_TEST_HOOKS BINDWATCH_BENCH_PEERS; do
	if [[ -n ${!var:-} ]]; then
		printf '%s=%s\0' "$var" "${!var}" >>"$stage/vm/env"
	fi
done

# Peer tools for the guest's benchmarks (libbpf-tools' bindsnoop), each with
# the libraries and loader it links against, at the same paths as here.
stage_file() {
	mkdir -p "$stage$(dirname "$1")"
	cp -L "$1" "$stage$1"
}
for f in ${BINDWATCH_VM_FILES:-}; do
	[[ $f == /* && -f $f ]] || die "BINDWATCH_VM_FILES: $f is not a file named by its absolute path"
	stage_file "$f"
	while read -r lib; do
		stage_file "$lib"
	done < <(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
	say "guest file $f"
done

# Modules in load order: dependencies first, from each .ko's own modinfo,
# since the .deb ships no modules.dep (depmod runs at install).
declare -A module_rel=() builtin=() queued=()
while read -r rel; do
	base=${rel##*/}
	base=${base%.ko}
	module_rel[${base//-/_}]=$rel
done <"$moddir/modules.order"
while read -r rel; do
	base=${rel##*/}
	base=${base%.ko}
	builtin[${base//-/_}]=1
done <"$moddir/modules.builtin"
load_order=()
queue_module() {
	local name=${1//-/_} rel deps dep
	[[ -n ${queued[$name]:-} ]] && return 0
	queued[$name]=1
	if [[ -n ${builtin[$name]:-} ]]; then
		say "module $name is built into $kver"
		return 0
	fi
	rel=${module_rel[$name]:-}
	[[ -n $rel ]] || die "no module $name in $moddir"
	[[ -f $moddir/$rel ]] || die "module file $moddir/$rel missing (compressed modules are not supported)"
	deps=$(tr '\0' '\n' <"$moddir/$rel" | sed -n 's/^depends=//p')
	local -a dep_list=()
	IFS=, read -ra dep_list <<<"${deps%%$'\n'*}"
	for dep in "${dep_list[@]}"; do
		if [[ -n $dep ]]; then queue_module "$dep"; fi
	done
	load_order+=("$rel")
}
for m in $modules; do queue_module "$m"; done
for rel in "${load_order[@]}"; do
	mkdir -p "$stage/lib/modules/$kver/${rel%/*}"
	cp "$moddir/$rel" "$stage/lib/modules/$kver/$rel"
	printf '/lib/modules/%s/%s\n' "$kver" "$rel" >>"$stage/vm/modules"
done
if ((${#load_order[@]})); then say "modules, in load order: ${load_order[*]##*/}"; fi

(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --owner=0:0 --quiet) |
	gzip -1 >"$run/initrd.gz"
say "initramfs $(du -h "$run/initrd.gz" | cut -f1)"

# --- boot --------------------------------------------------------------------

# KVM is never used: /dev/kvm exists on the CI machines but hangs.
qemu=(
	qemu-system-x86_64 -accel "tcg,thread=multi" -smp "$smp" -m 1024
	-nographic -vga none -nic none -no-reboot
	-kernel "$boot_image" -initrd "$run/initrd.gz"
	-append "console=ttyS0 panic=-1 rdinit=/init loglevel=5"
)
say "booting $kver (timeout ${timeout_s}s, log $log)"
start=$SECONDS
set +e
# stdin from /dev/null: qemu must not put a terminal into raw mode.
timeout --foreground --kill-after=10 "$timeout_s" "${qemu[@]}" </dev/null 2>&1 | sed -u -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' | tee "$log"
qemu_status=${PIPESTATUS[0]}
set -e
took=$((SECONDS - start))

result=$(grep -a "^$result_marker: " "$log" | tail -n 1 || true)
if ((qemu_status == 124 || qemu_status == 137)); then
	if [[ -n $result ]]; then
		die "guest printed '$result' but did not power off within ${timeout_s}s (log $log)"
	fi
	die "guest did not report within ${timeout_s}s: killed (log $log)"
fi
case $result in
"$result_marker: PASS")
	say "PASS in ${took}s (qemu exit $qemu_status, log $log)"
	;;
"$result_marker: "*)
	die "tests failed in the guest: ${result#"$result_marker: "} (log $log)"
	;;
*)
	if grep -aq 'Kernel panic' "$log"; then
		die "guest kernel panicked: $(grep -a -m1 'Kernel panic' "$log") (log $log)"
	fi
	die "guest stopped without reporting a result (qemu exit $qemu_status, log $log)"
	;;
esac
