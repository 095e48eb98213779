# Shared by the measurement scripts (test/storm.sh, test/overhead.sh):
# source it from the repository's root. It checks for root, builds what
# they run, makes their work directory and stops on exit everything they
# started. Set `me` (the script's name, for messages) before sourcing.
#
#   bench_setup PREFIX     root check, builds, $work, the exit trap
#   running+=("$pid")      a process to stop on exit
#   forget PID             it has been stopped and waited for
#   wait_for FILE PATTERN  until PATTERN is in FILE (30 s), or exit 1
#   metric FILE NAME [LABELS...]
#                          the sum of NAME's series in a scrape whose
#                          labels contain every LABELS

bench_setup() {
	if [ "$(id -u)" != 0 ]; then
		echo "$me loads BPF programs: run it as root" >&2
		exit 1
	fi
	# The agent as it ships (Makefile's release target: static, stripped).
	make -s release PKGDIR=bin >/dev/null
	go build -o bin/devkafka ./cmd/devkafka
	go build -o bin/loadgen ./test/loadgen
	work=$(mktemp -d "/tmp/bindwatch-$1.XXXXXX")
	running=() # pids of what the script started and has not stopped yet
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	local p
	for p in ${running[@]+"${running[@]}"}; do kill -INT "$p" 2>/dev/null || true; done
	sleep 0.5
	for p in ${running[@]+"${running[@]}"}; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}

forget() {
	local keep=() p
	for p in "${running[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	running=(${keep[@]+"${keep[@]}"})
}

wait_for() {
	local i
	for ((i = 0; i < 300; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "$me: timed out waiting for '$2' in $1:" >&2
	cat "$1" >&2
	exit 1
}

metric() {
	awk -v n="$2" -v l1="${3:-}" -v l2="${4:-}" 'index($1, n) == 1 && (substr($1, length(n) + 1) == "" || substr($1, length(n) + 1, 1) == "{") && index($1, l1) && index($1, l2) { s += $2 } END { printf "%.0f", s }' "$1"
}

# scrape FILE: the agent's /metrics, from $metrics (its metrics.listen
# unix socket), into FILE.
scrape() { curl -sf --unix-socket "$metrics" http://agent/metrics >"$1"; }

# settle DIR: until published+spooled+dropped stopped moving (at most
# 30 s); the last scrape is DIR/m.now.
settle() {
	local last="" now i
	for ((i = 0; i < 60; i++)); do
		scrape "$1/m.now"
		now="$(metric "$1/m.now" bindwatch_events_published_total) $(metric "$1/m.now" bindwatch_events_spooled_total) $(metric "$1/m.now" bindwatch_events_dropped_total)"
		[ "$now" = "$last" ] && return 0
		last=$now
		sleep 0.5
	done
}
