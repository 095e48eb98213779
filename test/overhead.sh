#!/usr/bin/env bash
# What bindwatch costs, measured side by side with nothing and with the peers
# that exist on this machine, in one run. A measurement, not a test: it is not
# part of `make test`.
#
#   sudo test/overhead.sh [ROUNDS] [SECONDS] [STORM_SECONDS]     (default 5 3 10)
#
# Loops (test/loadgen on CPU 0): udp (socket+bind+close), listen (socket+bind+
# listen+close, TCP) and getppid (a system call bindwatch never reports: the
# syscall tracepoints put every system call of every task on the slow path).
# Contenders (each on CPU 1, its output read into /dev/null through a pipe):
# `bindwatch snoop --hook H` for fexit, kprobe and tracepoint, `bindwatch snoop
# --listen`, bpftrace printing each bind from tracepoint:syscalls:sys_exit_bind,
# and libbpf-tools' bindsnoop. Each is started once first: one that does not
# load gets a row saying why (snoop's own refusal, the peer's last error line,
# or that it is not installed) and is not measured.
# For every loop and round, each contender is measured next to a run of the
# loop alone (alone first in odd rounds, attached first in even ones), so drift
# on a shared machine hits both sides alike; the table gives medians of CPU time
# per operation (user + system of the loop: waiting for a busy CPU does not
# count) and the median, min and max of the per-pair ratios.
# Then the agent under a bind storm: `bindwatch run` (CPU 1) publishing to
# devkafka (one broker, CPU 1) while loadgen binds UDP as fast as it can as
# root (CPU 0): root is not under capture.uid_budget, so nothing is suppressed.
# From the agent's /metrics, deltas over the storm: kernel events, published,
# spooled, dropped by reason, loss = kernel - published - spooled; and the
# agent's peak RSS (VmHWM).
# Then the udp and getppid loops again in Debian's 6.1 kernel under qemu,
# where fexit and kprobe load, with libbpf-tools' bindsnoop beside the hooks
# (BenchmarkBindLoop through test/vm/run.sh; VM=0 leaves it out).
# Everything it starts it stops on exit; it pins nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
cmdline="test/overhead.sh${*:+ $*}"
rounds=${1:-5} secs=${2:-3} storm_secs=${3:-10}
me=overhead.sh
. test/lib.sh
bench_setup overhead

# Contenders: name, header lines printed once attached, command.
names=() lines=() cmds=()
add() { names+=("$1") lines+=("$2") cmds+=("$3"); }
for h in fexit kprobe tracepoint; do add "bindwatch snoop --hook $h" 1 "bin/bindwatch snoop --hook $h"; done
add "bindwatch snoop --listen" 1 "bin/bindwatch snoop --listen"
# BASELINE=/path/to/an/older/bindwatch adds that build's snoop, for a change's
# before and after in one run.
if [ -n "${BASELINE:-}" ]; then add "baseline snoop ($BASELINE)" 1 "$BASELINE snoop"; fi
bpftrace_prog='tracepoint:syscalls:sys_exit_bind { printf("%d %d %s %d\n", pid, uid, comm, args->ret); }'
# bpftrace prints "Attaching 1 probe..." and then attaches; its line saying
# it attached stays in its output buffer until it prints more, which the
# empty program never does: so one line, and a pause (see start).
add "bpftrace (sys_exit_bind, printf)" 1 "bpftrace"
# The same tracepoint with a program that does nothing: the floor any
# syscall-tracepoint hook pays (every system call takes the slow path).
add "bpftrace (sys_exit_bind, empty)" 1 "bpftrace-empty"
add "libbpf-tools bindsnoop" 1 "bindsnoop"

# start N: starts contender N on CPU 1 and waits until it has printed the
# header it prints once attached. Sets tracer; on failure says why in
# $work/why and returns 1.
start() {
	local n=$1 head="$work/head.$1"
	rm -f "$head" "$head.tmp" "$work/why"
	local -a cmd
	case ${cmds[n]} in
	bpftrace) cmd=(env bpftrace -B line -e "$bpftrace_prog") ;;
	bpftrace-empty) cmd=(env bpftrace -B line -e 'tracepoint:syscalls:sys_exit_bind { }') ;;
	*) read -r -a cmd <<<"${cmds[n]}" ;;
	esac
	if [ "${cmd[0]}" != bin/bindwatch ] && [ "${cmd[0]}" != env ] && ! command -v "${cmd[0]}" >/dev/null; then
		echo "not installed (${cmd[0]} not on PATH)" >"$work/why"
		return 1
	fi
	if [ "${cmd[0]}" = env ] && ! command -v bpftrace >/dev/null; then
		echo "not installed (bpftrace not on PATH: apt-get install bpftrace)" >"$work/why"
		return 1
	fi
	# shellcheck disable=SC2016 # $1 and $2 are the inner shell's
	taskset -c 1 "${cmd[@]}" 2>"$work/err.$n" > >(exec taskset -c 1 sh -c 'head -n "$1" >"$2.tmp"; mv "$2.tmp" "$2"; exec cat >/dev/null' sh "${lines[n]}" "$head") &
	tracer=$!
	running+=("$tracer")
	local i
	for ((i = 0; i < 2400; i++)); do
		if [ -e "$head" ] && [ "$(wc -l <"$head")" -ge "${lines[n]}" ] && kill -0 "$tracer" 2>/dev/null; then
			case ${cmds[n]} in bpftrace*) sleep 2 ;; esac
			kill -0 "$tracer" 2>/dev/null && return 0
		fi
		if ! kill -0 "$tracer" 2>/dev/null; then
			wait "$tracer" || true
			forget "$tracer"
			# snoop names each refused hook on a line of its own; a peer's
			# last line of stderr is its reason.
			local h=${cmds[n]##*--hook }
			{ grep -m1 "^  $h: " "$work/err.$n" | sed 's/^  [a-z]*: //' ||
				grep -v '^\s*$' "$work/err.$n" | tail -n 1; } >"$work/why"
			[ -s "$work/why" ] || echo "exited before attaching, saying nothing" >"$work/why"
			return 1
		fi
		sleep 0.05
	done
	stop
	echo "not attached after 120 s" >"$work/why"
	return 1
}
stop() { # SIGINT, then SIGKILL after 10 s: a contender that hangs on exit does not stop the run
	kill -INT "$tracer" 2>/dev/null || true
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$tracer" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$tracer" 2>/dev/null || true
	wait "$tracer" || true
	forget "$tracer"
}

# measure LOOP: one loadgen run on CPU 0; prints "cpu_ns_per_op rate".
measure() {
	taskset -c 0 bin/loadgen -proto "$1" -duration "${secs}s" |
		sed -n 's/.*rate=\([0-9]*\).*cpu_ns_per_op=\([0-9]*\).*/\2 \1/p'
}

echo "== which contenders load here"
loaded=()
declare -A refused=()
for n in "${!names[@]}"; do
	if start "$n"; then
		stop
		hook=$(grep -o 'msg="hook attached".*hook=[a-z]*' "$work/err.$n" | sed 's/.*hook=//' || true)
		[ -z "$hook" ] || [[ ${names[n]} == *--hook* ]] || names[n]="${names[n]} (hook $hook)"
		loaded+=("$n")
		echo "${names[n]}: loads"
	else
		refused[$n]=$(cat "$work/why")
		echo "${names[n]}: not measured: ${refused[$n]}"
	fi
done

loops=(udp listen getppid)
# failed N LOOP: contender N loaded at first but not this time (a busy machine
# can starve bpftrace's compiler): the round is left out and counted.
failed() {
	echo "$2 ${names[$1]}: did not start this round, left out: $(cat "$work/why")"
	cat "$work/why" >>"$work/failed.$1.$2"
}
for loop in "${loops[@]}"; do
	for ((r = 1; r <= rounds; r++)); do
		for n in "${loaded[@]}"; do
			if ((r % 2)); then
				read -r a ar < <(measure "$loop")
				if ! start "$n"; then
					failed "$n" "$loop"
					continue
				fi
				read -r b br < <(measure "$loop")
				stop
			else
				if ! start "$n"; then
					failed "$n" "$loop"
					continue
				fi
				read -r b br < <(measure "$loop")
				stop
				read -r a ar < <(measure "$loop")
			fi
			lost=$(grep -ho 'lost [0-9]* binds' "$work/err.$n" | head -n 1 || true)
			echo "$a $b $ar $br" >>"$work/res.$n.$loop"
			[ -z "$lost" ] || echo "$lost" >>"$work/lost.$n.$loop"
			printf '%-8s round %d/%d  %-45s alone %6s ns/op %8s/s   with %6s ns/op %8s/s%s\n' \
				"$loop" "$r" "$rounds" "${names[n]}" "$a" "$ar" "$b" "$br" "${lost:+  ($lost)}"
		done
		if [ ${#loaded[@]} = 0 ]; then
			read -r a ar < <(measure "$loop")
			echo "$a - $ar -" >>"$work/res.none.$loop"
		fi
	done
done

# --- the agent under a bind storm
echo "== the agent under a ${storm_secs} s UDP bind storm (loadgen as root on CPU 0; agent and devkafka on CPU 1)"
taskset -c 1 bin/devkafka --listen 127.0.0.1:0 --brokers 1 --partitions 1 --topic bindwatch.bind-events >"$work/devkafka.out" 2>"$work/devkafka.log" &
devkafka=$!
running+=("$devkafka")
wait_for "$work/devkafka.out" '^broker '
broker=$(sed -n 's/^broker //p' "$work/devkafka.out" | head -n 1)
cat >"$work/bindwatch.yaml" <<EOF
capture:
  pin_dir: ""
kafka:
  brokers: [${broker}]
  topic: bindwatch.bind-events
schema:
  registry_url: ""
spool:
  dir: ${work}/spool
metrics:
  listen: unix:${work}/metrics.sock
log:
  format: text
EOF
taskset -c 1 bin/bindwatch run --config "$work/bindwatch.yaml" 2>"$work/agent.log" &
agent=$!
running+=("$agent")
wait_for "$work/agent.log" 'bindwatch agent started'
agent_hook=$(grep -o 'msg="hook attached".*hook=[a-z]*' "$work/agent.log" | sed 's/.*hook=//' || true)
metrics=$work/metrics.sock
settle "$work"
cp "$work/m.now" "$work/m.before"
rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$agent/status")
# The resident set in parts, sampled through the storm: the agent's own
# memory (anonymous), and the mapped files, which are the executable and
# the ring buffer's data pages (mapped once: their size in full).
(
	anon=0 file=0
	while kill -0 "$agent" 2>/dev/null; do
		read -r a f < <(awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { print a + 0, f + 0 }' "/proc/$agent/status" 2>/dev/null || echo "0 0")
		((a > anon)) && anon=$a
		((f > file)) && file=$f
		echo "$anon $file" >"$work/rss.parts"
		sleep 0.2
	done
) &
sampler=$!
running+=("$sampler")
read -r storm_ns storm_rate < <(secs=$storm_secs measure udp)
settle "$work"
cp "$work/m.now" "$work/m.after"
hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$agent/status")
read -r anon_kib file_kib <"$work/rss.parts"
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
forget "$sampler"
kill -TERM "$agent"
wait "$agent" || true
forget "$agent"
kill -INT "$devkafka"
wait "$devkafka" || true
forget "$devkafka"
delta() { echo $(($(metric "$work/m.after" "$@") - $(metric "$work/m.before" "$@"))); }
kernel=$(delta bindwatch_kernel_events_total)
published=$(delta bindwatch_events_published_total)
spooled=$(delta bindwatch_events_spooled_total)
replayed=$(delta bindwatch_events_replayed_total) # published counts these too
drops=""
while read -r reason; do
	d=$(delta bindwatch_events_dropped_total "reason=\"$reason\"")
	[ "$d" = 0 ] || drops="$drops${drops:+, }$reason $d"
done < <(grep -o '^bindwatch_events_dropped_total{reason="[a-z_]*"' "$work/m.after" | sed 's/.*reason="//; s/"$//')
loss=$((kernel - published - (spooled - replayed)))

# --- the same loops in Debian's 6.1 kernel, where fexit and kprobe load
# BenchmarkBindLoop (bpf/loop_bench_test.go) inside test/vm/run.sh's guest:
# the udp and getppid loops on a locked thread, its CPU time alone and with
# each hook (loaded in the benchmark's process, every record read) and with
# libbpf-tools' bindsnoop when it is installed here (copied into the guest
# with its libraries). Software emulation: the guest's clock follows the
# host's, so its ranges are wide. VM=0 leaves it out.
vm_rows=""
if [ "${VM:-1}" != 0 ]; then
	if ! command -v qemu-system-x86_64 >/dev/null; then
		vm_rows="| (VM) | all | - | - | - | - | not measured: qemu-system-x86_64 not installed (Debian package qemu-system-x86) |"
	else
		echo "== the loops in Debian's 6.1 kernel under qemu (test/vm/run.sh, about 2 minutes)"
		vm_files="" vm_peers=""
		if [ -x /usr/sbin/bindsnoop ] && [ -x /usr/bin/stdbuf ] && [ -e /usr/libexec/coreutils/libstdbuf.so ]; then
			# stdbuf -oL: through a pipe its header, printed once attached, is not held in stdio's buffer.
			vm_files="/usr/bin/stdbuf /usr/libexec/coreutils/libstdbuf.so /usr/sbin/bindsnoop"
			vm_peers="libbpf-tools bindsnoop=stdbuf -oL /usr/sbin/bindsnoop"
		else
			vm_rows="| libbpf-tools bindsnoop (VM) | all | - | - | - | - | not measured: /usr/sbin/bindsnoop (Debian package libbpf-tools) or stdbuf not installed |"
		fi
		if BINDWATCH_VM_FILES="$vm_files" BINDWATCH_BENCH_PEERS="$vm_peers" BINDWATCH_VM_PACKAGES=./bpf \
			test/vm/run.sh -test.run '^$' -test.bench BindLoop -test.benchtime 1x >"$work/vm.log" 2>&1; then
			# BenchmarkBindLoop/LOOP/CONTENDER-N 1 WITH ns/op ALONE alone-ns/op R ratio MAX ratio-max MIN ratio-min,
			# or a reason line then "--- SKIP: BenchmarkBindLoop/LOOP/CONTENDER".
			vm_rows="$vm_rows${vm_rows:+$'\n'}$(awk '
				/^ +loop_bench_test.go:[0-9]+: / { why = $0; sub(/^ +loop_bench_test.go:[0-9]+: /, "", why); gsub(/\|/, "/", why) }
				/^--- SKIP: BenchmarkBindLoop\// { split(substr($3, 19), p, "/"); c = p[2]; sub(/^peer=/, "", c); gsub(/_/, " ", c); printf "| %s (VM) | %s | - | - | - | - | not measured: %s |\n", c, p[1], why }
				/^BenchmarkBindLoop\/.* ratio-min/ {
					name = substr($1, 19); sub(/-[0-9]+$/, "", name); split(name, p, "/")
					c = p[2]; if (c ~ /^peer=/) { c = substr(c, 6); gsub(/_/, " ", c) } else c = "bindwatch, hook " c
					printf "| %s (VM) | %s | %.0f | %.0f | %.3f (%.3f-%.3f) | - | %s |\n", c, p[1], $5, $3, $7, $11, $9, substr(why, index(why, "over "))
				}' "$work/vm.log")"
		else
			vm_rows="$vm_rows${vm_rows:+$'\n'}| (VM) | all | - | - | - | - | not measured: test/vm/run.sh failed: $(grep '^vm: error' "$work/vm.log" | tail -n 1 | sed 's/|/\//g') |"
		fi
	fi
fi

# --- the table
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
{
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $rounds rounds of ${secs} s per pair; medians, ratios per pair (min-max); other work on this machine was not stopped"
	echo
	echo '| contender | loop | alone cpu ns/op | with cpu ns/op | ratio median (min-max) | ops/s alone / with | notes |'
	echo '|---|---|---|---|---|---|---|'
	for loop in "${loops[@]}"; do
		cat "$work"/res.*."$loop" 2>/dev/null >"$work/all.$loop" || true
		printf '| nothing | %s | %s | - | 1 | %s | median of all %s alone runs (min %s, max %s ns/op) |\n' "$loop" \
			"$(awk '{ print $1 }' "$work/all.$loop" | median)" "$(awk '{ print $3 }' "$work/all.$loop" | median)" \
			"$(wc -l <"$work/all.$loop")" "$(awk '{ print $1 }' "$work/all.$loop" | sort -n | head -n 1)" \
			"$(awk '{ print $1 }' "$work/all.$loop" | sort -n | tail -n 1)"
	done
	for n in "${!names[@]}"; do
		if [ -n "${refused[$n]+x}" ]; then
			# The reason's first clause; the whole of it is printed above.
			printf '| %s | all | - | - | - | - | not measured: %s |\n' "${names[n]}" "$(sed 's/: .*//; s/|/\//g' <<<"${refused[$n]}")"
			continue
		fi
		for loop in "${loops[@]}"; do
			f="$work/res.$n.$loop"
			lost=""
			[ ! -e "$work/lost.$n.$loop" ] || lost="snoop said: $(tr '\n' ';' <"$work/lost.$n.$loop")"
			[ ! -e "$work/failed.$n.$loop" ] || lost="$lost${lost:+ }$(wc -l <"$work/failed.$n.$loop") rounds left out: did not start ($(head -n 1 "$work/failed.$n.$loop"))"
			if [ ! -e "$f" ]; then
				printf '| %s | %s | - | - | - | - | %s |\n' "${names[n]}" "$loop" "$lost"
				continue
			fi
			ratios=$(awk '{ printf "%.3f\n", $2 / $1 }' "$f" | sort -n)
			printf '| %s | %s | %s | %s | %.3f (%s-%s) | %s / %s | %s |\n' "${names[n]}" "$loop" \
				"$(awk '{ print $1 }' "$f" | median)" "$(awk '{ print $2 }' "$f" | median)" \
				"$(median <<<"$ratios")" "$(head -n 1 <<<"$ratios")" "$(tail -n 1 <<<"$ratios")" \
				"$(awk '{ print $3 }' "$f" | median)" "$(awk '{ print $4 }' "$f" | median)" "$lost"
		done
	done
	mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
	printf '| bindwatch run (hook %s) -> devkafka | udp storm %s s, as root | - | %s | - | - / %s | kernel events %s, published %s (%s of them replayed from the spool), spooled %s, dropped %s; loss (kernel - published - still spooled) %s; agent RSS %s MiB before, peak %s MiB (peaks of its parts: anonymous %s MiB, mapped files %s MiB) |\n' \
		"${agent_hook:-?}" "$storm_secs" "$storm_ns" "$storm_rate" "$kernel" "$published" "$replayed" "$spooled" "${drops:-none}" "$loss" \
		"$(mib "$rss_kib")" "$(mib "$hwm_kib")" "$(mib "$anon_kib")" "$(mib "$file_kib")"
	if [ -n "$vm_rows" ]; then
		echo
		echo "In Debian's $(ls .cache/vm/kernels 2>/dev/null | sed -n 's/^linux-image-//p' | tail -n 1) kernel under qemu (software emulation, 2 vCPUs):"
		echo
		echo '| contender | loop | alone cpu ns/op | with cpu ns/op | ratio median (min-max) | ops/s | notes |'
		echo '|---|---|---|---|---|---|---|'
		echo "$vm_rows"
	fi
	echo
	echo "command: sudo $cmdline"
} | tee "$work/table.md"
