#!/usr/bin/env bash
# The storm load test: the agent as it ships (`make release`) against
# devkafka on this machine, under one root process binding UDP as fast as one
# core goes, while an unprivileged user opens and closes listeners beside
# it. A measurement that fails when it loses: it is not part of `make test`.
#
#   sudo test/storm.sh [RUNS] [SECONDS]                       (default 5 10)
#
# Each run starts a fresh devkafka (one broker, CPU 1) and agent (CPU 1,
# spool in a new directory), waits until the agent is idle, then runs for
# SECONDS: `loadgen -proto udp` as root on CPU 0 (root is not under
# capture.uid_budget) and `loadgen -proto listen -rate 100` as uid 4349
# (testenv.UserStorm) on CPU 1. It reports, from the agent's /metrics
# (deltas over the run): the storm's rate; kernel events, published,
# spooled, what was dropped by reason and by reason and kind
# (bindwatch_events_dropped_by_kind_total), and loss by the counters
# (kernel - published - still spooled); from the topic, read back with
# `bindwatch consume`: the distinct sequence numbers against the kernel's
# counter (records the agent numbered that never reached Kafka, the
# authority: the counters can lag a late acknowledgement) and the listen
# records of the user's loop against the listens it made; the agent's
# peak RSS (VmHWM) and the CPU time of agent and broker until everything
# was delivered. A run fails when a numbered record is missing from the
# topic or a listen record is; the script exits 1 when any run failed.
#
# AGENT=/path/to/a/bindwatch runs that build instead of this tree's release.
# BASELINE=/path/to/another/bindwatch alternates runs between that build and
# this one (baseline first), for a change's before and after in one session.
# PROFILE=DIR also records, per run: the agent's CPU profile (perf record,
# of an unstripped copy of the release build unless AGENT is given: give
# AGENT an unstripped build for perf to name functions), CPU seconds of the agent and of
# devkafka, the agent's write and fsync system calls and bytes written, and
# its garbage collections (GODEBUG=gctrace=1), into DIR.
# OVERFLOW=1 gives the agent a ring of 1 MiB (capture.ring_buffer_bytes),
# which holds fewer records than its queue and batches, and runs it on the
# storm's CPU: every buffer overflows and binds are lost; the run then fails only if a listen or
# close record was (issue 24: "a listener is the last thing lost").
# SPOOL_BYTES=SIZE (spool.max_bytes, e.g. 32MiB) gives the agent a spool
# smaller than what the storm spools: it fills, and drops batches of binds
# only before those holding a listen or close (reported by kind, as
# spool_full); the run then fails only if a listen or close record was lost.
# Everything it starts it stops on exit; it pins nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5} secs=${2:-10}
storm_uid=4349 # testenv.UserStorm
me=storm.sh
. test/lib.sh
bench_setup storm
agent=${AGENT:-bin/bindwatch}
if [ -n "${PROFILE:-}" ]; then
	mkdir -p "$PROFILE"
	if [ -z "${AGENT:-}" ]; then
		# The release build with its symbols, for perf.
		CGO_ENABLED=0 go build -trimpath -o bin/bindwatch.prof ./cmd/bindwatch
		agent=bin/bindwatch.prof
	fi
fi
agents=()
[ -z "${BASELINE:-}" ] || agents+=("$BASELINE")
agents+=("$agent")

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

failed=0
results=()
for ((r = 0; r < runs * ${#agents[@]}; r++)); do
	agent_bin=${agents[r % ${#agents[@]}]}
	run=$((r + 1))
	rm -rf "$work/run" && mkdir -p "$work/run"
	w=$work/run
	taskset -c 1 bin/devkafka --listen 127.0.0.1:0 --brokers 1 --partitions 1 --topic storm >"$w/devkafka.out" 2>"$w/devkafka.log" &
	devkafka=$!
	running+=("$devkafka")
	wait_for "$w/devkafka.out" '^broker '
	broker=$(sed -n 's/^broker //p' "$w/devkafka.out" | head -n 1)
	cat >"$w/bindwatch.yaml" <<EOF
capture:
  pin_dir: ""${OVERFLOW:+
  ring_buffer_bytes: 1MiB}
kafka:
  brokers: [${broker}]
  topic: storm
schema:
  registry_url: ""
spool:
  dir: ${w}/spool${SPOOL_BYTES:+
  max_bytes: ${SPOOL_BYTES}}
metrics:
  listen: unix:${w}/metrics.sock
log:
  format: text
EOF
	gc_env=()
	[ -z "${PROFILE:-}" ] || gc_env=(GODEBUG=gctrace=1)
	agent_cpu=1
	[ -z "${OVERFLOW:-}" ] || agent_cpu=0
	env ${gc_env[@]+"${gc_env[@]}"} taskset -c $agent_cpu "$agent_bin" run --config "$w/bindwatch.yaml" 2>"$w/agent.log" &
	agent=$!
	running+=("$agent")
	wait_for "$w/agent.log" 'bindwatch agent started'
	metrics=$w/metrics.sock
	delta() { echo $(($(metric "$w/m.after" "$@") - $(metric "$w/m.before" "$@"))); }
	settle "$w"
	cp "$w/m.now" "$w/m.before"
	rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$agent/status")
	a0=$(cpu_ticks "$agent") k0=$(cpu_ticks "$devkafka")
	if [ -n "${PROFILE:-}" ]; then
		perf record -q -F 499 -g -p "$agent" -o "$PROFILE/agent.$run.perf" -- sleep "$secs" >/dev/null 2>&1 &
		perf_rec=$!
		perf stat -x, -e 'syscalls:sys_enter_write,syscalls:sys_enter_pwrite64,syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync' \
			-p "$agent" -o "$PROFILE/agent.$run.syscalls" -- sleep "$secs" >/dev/null 2>&1 &
		perf_stat=$!
		wb0=$(awk '/^write_bytes:/ { print $2 }' "/proc/$agent/io")
		gc0=$(grep -c '^gc ' "$w/agent.log" || true)
	fi
	taskset -c 1 setpriv --reuid $storm_uid --regid $storm_uid --clear-groups bin/loadgen -proto listen -rate 100 -duration "${secs}s" >"$w/listen.out" &
	listener=$!
	running+=("$listener")
	taskset -c 0 bin/loadgen -proto udp -duration "${secs}s" >"$w/storm.out"
	wait "$listener"
	forget "$listener"
	if [ -n "${PROFILE:-}" ]; then
		wb1=$(awk '/^write_bytes:/ { print $2 }' "/proc/$agent/io")
		wait "$perf_rec" "$perf_stat" || true
	fi
	settle "$w"
	# Then until every record numbered is published, spooled or counted
	# as dropped (at most 120 s): counters that stand still can be a write
	# that stalls, with records waiting behind it in the ring.
	waited=0
	for ((i = 0; i < 240; i++)); do
		cp "$w/m.now" "$w/m.after"
		open=$(($(delta bindwatch_kernel_events_total) - $(delta bindwatch_events_published_total) - $(delta bindwatch_events_spooled_total) + $(delta bindwatch_events_replayed_total) - $(delta bindwatch_events_dropped_total)))
		[ "$open" -gt 0 ] || break
		sleep 0.5
		waited=$((waited + 1))
		scrape "$w/m.now"
	done
	# CPU of the agent and the broker from the storm's start until
	# everything was delivered.
	a1=$(cpu_ticks "$agent") k1=$(cpu_ticks "$devkafka")
	cp "$w/m.now" "$w/m.after"
	hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$agent/status")
	if [ -n "${PROFILE:-}" ]; then
		gc1=$(grep -c '^gc ' "$w/agent.log" || true)
		{
			echo "agent cpu $(awk -v t=$((a1 - a0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }') s, devkafka cpu $(awk -v t=$((k1 - k0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }') s from the storm's start until all was delivered"
			echo "agent wrote $(((wb1 - wb0) / 1048576)) MiB to disk; garbage collections $((gc1 - gc0))"
			awk -F, '{ printf "%s %s\n", $3, $1 }' "$PROFILE/agent.$run.syscalls" | grep syscalls || true
		} >"$PROFILE/agent.$run.summary"
		cp "$w/agent.log" "$PROFILE/agent.$run.log"
	fi
	kernel=$(delta bindwatch_kernel_events_total)
	published=$(delta bindwatch_events_published_total)
	spooled=$(delta bindwatch_events_spooled_total)
	replayed=$(delta bindwatch_events_replayed_total)
	loss=$((kernel - published - (spooled - replayed)))
	drops=""
	while read -r reason; do
		d=$(delta bindwatch_events_dropped_total "reason=\"$reason\"")
		[ "$d" = 0 ] || drops="$drops${drops:+, }$reason $d"
	done < <(grep -o '^bindwatch_events_dropped_total{reason="[a-z_]*"' "$w/m.after" | sed 's/.*reason="//; s/"$//' | sort -u)
	bykind=""
	while read -r labels; do
		d=$(delta bindwatch_events_dropped_by_kind_total "$labels")
		[ "$d" = 0 ] || bykind="$bykind${bykind:+, }$labels $d"
	done < <(grep -o '^bindwatch_events_dropped_by_kind_total{[^}]*}' "$w/m.after" | sed 's/^[^{]*{//; s/}$//' | sort -u)
	made=$(sed -n 's/.*binds=\([0-9]*\).*/\1/p' "$w/listen.out")
	# The user's listen records in the topic, by the listen loop's pid
	# (taskset and setpriv exec it): the independent count (a
	# replayed batch may be there twice: the listens are counted, not the
	# messages).
	bin/bindwatch consume --brokers "$broker" --topic storm --from-beginning --timeout 5s 2>"$w/consume.err" |
		grep '"kind":"listen"' |
		grep "\"pid\":$listener,\"tid\":[0-9]*,\"ppid\":[0-9]*,\"uid\":$storm_uid," >"$w/listens.json" || true
	got=$(grep -o '"cookie":[0-9]*' "$w/listens.json" | sort -u | wc -l)
	# And every sequence number of the agent's life, read back.
	# The topic's distinct sequence numbers against the kernel's counter
	# (every record the agent numbered since it started): what never
	# reached Kafka, whatever the counters say.
	bin/bindwatch consume --brokers "$broker" --topic storm --from-beginning --gaps >"$w/gaps" 2>&1 || true
	distinct=$(sed -n 's/^host .*: \([0-9]*\) events, seq.*/\1/p' "$w/gaps" | head -n 1)
	dups=$(sed -n 's/^host .*, \([0-9]*\) duplicates.*/\1/p' "$w/gaps" | head -n 1)
	last=$(sed -n 's/^host .*, seq [0-9]*\.\.\([0-9]*\).*/\1/p' "$w/gaps" | head -n 1)
	first=$(sed -n 's/^host .*, seq \([0-9]*\)\.\..*/\1/p' "$w/gaps" | head -n 1)
	# Missing between the first and the last, and after the last.
	# Only what was numbered until the run settled: the agent captures the
	# whole host, and another burst after it (other users of the machine)
	# may still be on its way while the topic is read.
	settled=$(metric "$w/m.after" bindwatch_kernel_events_total)
	missing=$(sed -n 's/^host .* missing: //p' "$w/gaps" | head -n 1 | tr ' ' '\n' |
		awk -F- -v end="$settled" 'NF { a = $1; b = (NF > 1 ? $2 : $1); if (b >= end) b = end - 1; if (b >= a) n += b - a + 1 } END { printf "%.0f", n }')
	trailing=$((settled - (last + 1)))
	seq_loss=$((${missing:-0} + (trailing > 0 ? trailing : 0)))

	# The counters once more, seconds later: a late acknowledgement has
	# arrived by now.
	scrape "$w/m.after"
	loss=$(($(delta bindwatch_kernel_events_total) - $(delta bindwatch_events_published_total) - ($(delta bindwatch_events_spooled_total) - $(delta bindwatch_events_replayed_total))))
	if [ -n "${KEEP:-}" ]; then
		# KEEP=DIR keeps each run's logs, metrics and read-back in DIR/run.N.
		mkdir -p "$KEEP/run.$run"
		cp "$w"/*.json "$w"/*.out "$w"/*.log "$w"/m.* "$w/gaps" "$KEEP/run.$run/" 2>/dev/null || true
	fi
	kill -TERM "$agent"
	wait "$agent" || true
	forget "$agent"
	[ -z "${KEEP:-}" ] || cp "$w/agent.log" "$KEEP/run.$run/agent.log"
	kill -INT "$devkafka"
	wait "$devkafka" || true
	forget "$devkafka"
	rate=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' "$w/storm.out")
	verdict=ok
	listener_drops=$(($(delta bindwatch_events_dropped_by_kind_total 'kind="listen"') + $(delta bindwatch_events_dropped_by_kind_total 'kind="close"')))
	if [ "$got" != "$made" ] || [ "$listener_drops" != 0 ] || { [ -z "${OVERFLOW:-}${SPOOL_BYTES:-}" ] && [ "$seq_loss" != 0 ]; }; then
		verdict=FAILED
		failed=1
	fi
	line=$(printf 'run %d (%s): %s binds/s; kernel %s, published %s (%s replayed), spooled %s; dropped: %s; by stage and kind: %s; loss by the counters %s; in the topic: %s distinct seqs (%s duplicates), %s of the agent'"'"'s numbered records missing; listens of uid %d: %s made, %s in the topic; RSS %.1f MiB before, peak %.1f MiB; all delivered or counted %.1f s after the counters stood still; CPU until then: agent %.2f s (%.1f us/event), devkafka %.2f s: %s' \
		"$run" "$agent_bin" "$rate" "$kernel" "$published" "$replayed" "$spooled" "${drops:-none}" "${bykind:-none}" "$loss" \
		"${distinct:-?}" "${dups:-0}" "$seq_loss" "$storm_uid" "$made" "$got" "$(awk -v k="$rss_kib" 'BEGIN { print k / 1024 }')" "$(awk -v k="$hwm_kib" 'BEGIN { print k / 1024 }')" "$(awk -v n="$waited" 'BEGIN { print n / 2 }')" \
		"$(awk -v t=$((a1 - a0)) -v hz="$hz" 'BEGIN { print t / hz }')" "$(awk -v t=$((a1 - a0)) -v hz="$hz" -v n="$kernel" 'BEGIN { print n ? t / hz / n * 1e6 : 0 }')" \
		"$(awk -v t=$((k1 - k0)) -v hz="$hz" 'BEGIN { print t / hz }')" "$verdict")
	echo "$line"
	results+=("$line")
done
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs: sudo test/storm.sh $runs $secs${BASELINE:+ (BASELINE=$BASELINE)}"
printf '%s\n' "${results[@]}"
exit $failed
