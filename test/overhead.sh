#!/usr/bin/env bash
# Measures what `bindwatch snoop` adds to the bind path: the bind loop of
# test/loadgen on CPU 0, alone and with snoop attached (on CPU 1, output to
# /dev/null), alternating ROUNDS times so drift hits both sides alike.
# Prints each round and two ratios of medians (attached / alone): CPU time per
# bind, which waiting for a busy CPU does not inflate, and the bind rate.
#
#   test/overhead.sh [ROUNDS] [SECONDS] [PROTO] [extra snoop flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} secs=${2:-3} proto=${3:-udp}
shift $(($# < 3 ? $# : 3))
go build -o bin/bindwatch ./cmd/bindwatch
go build -o bin/loadgen ./test/loadgen

# One loadgen run: prints "rate cpu_ns_per_bind".
measure() { taskset -c 0 bin/loadgen -proto "$proto" -duration "${secs}s" | sed -n 's/.*rate=\([0-9]*\).*cpu_ns_per_bind=\([0-9]*\).*/\1 \2/p'; }

alone=() attached=() alone_cpu=() attached_cpu=()
for ((i = 1; i <= rounds; i++)); do
	read -r a acpu < <(measure)
	taskset -c 1 bin/bindwatch snoop "$@" >/dev/null 2>/tmp/bindwatch-overhead.err &
	pid=$!
	until grep -q '^Tracing binds' /tmp/bindwatch-overhead.err 2>/dev/null; do sleep 0.05; done
	read -r b bcpu < <(measure)
	kill -INT "$pid"
	wait "$pid"
	grep -h 'lost' /tmp/bindwatch-overhead.err || true
	echo "round $i: alone ${a}/s ${acpu} cpu-ns/bind, with snoop ${b}/s ${bcpu} cpu-ns/bind"
	alone+=("$a") attached+=("$b") alone_cpu+=("$acpu") attached_cpu+=("$bcpu")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ma=$(median "${alone[@]}") mb=$(median "${attached[@]}")
ca=$(median "${alone_cpu[@]}") cb=$(median "${attached_cpu[@]}")
awk -v a="$ma" -v b="$mb" -v ca="$ca" -v cb="$cb" -v p="$proto" 'BEGIN {
	printf "%s median: cpu per bind alone %.0f ns, with snoop %.0f ns: ratio %.3f\n", p, ca, cb, cb/ca
	printf "%s median: rate alone %.0f/s, with snoop %.0f/s: slowdown %.3f\n", p, a, b, a/b
}'
