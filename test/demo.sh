#!/usr/bin/env bash
# make demo: the main job end to end on this machine. Starts devkafka (three
# Kafka-protocol brokers and a schema registry on loopback), runs the agent
# against it, makes a few binds (one from a process in a cgroup named like a
# Docker container), stops the agent and reads the topic back with
# `bindwatch consume`. Then the audit: a second agent reporting one user's
# sockets, `bindwatch audit` on its topic with a policy, a few expected
# listeners and one unexpected, and the finding it raises.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "make demo loads BPF programs: run it as root (sudo make demo)" >&2
	exit 1
fi

work=$(mktemp -d /tmp/bindwatch-demo.XXXXXX)
brokers=127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094
registry=http://127.0.0.1:28081
topic=bindwatch.bind-events
audit_topic=bindwatch.audit-demo-events
demo_uid=4346
pids=()
cgroup=""
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "$cgroup" ] && rmdir "$cgroup" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# wait_for FILE PATTERN: until PATTERN appears in FILE, at most 20 s.
wait_for() {
	for _ in $(seq 200); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "demo: timed out waiting for '$2' in $1:" >&2
	cat "$1" >&2
	exit 1
}

echo "== devkafka: 3 brokers and a schema registry on loopback (for demos and tests only)"
bin/devkafka --listen 127.0.0.1:29092 --brokers 3 --registry 127.0.0.1:28081 --topic "$topic" --topic "$audit_topic" >"$work/devkafka.out" 2>"$work/devkafka.log" &
pids+=($!)
wait_for "$work/devkafka.out" '^registry'
cat "$work/devkafka.out"

cat >"$work/bindwatch.yaml" <<EOF
capture:
  # Nothing pinned: pins would keep the demo's program attached, capturing
  # into a ring buffer nobody reads, after the demo's agent has exited.
  pin_dir: ""
kafka:
  brokers: [${brokers}]
  topic: ${topic}
schema:
  registry_url: ${registry}
spool:
  dir: ${work}/spool
metrics:
  listen: ""
log:
  format: text
EOF
echo
echo "== bindwatch run --config $work/bindwatch.yaml"
bin/bindwatch run --config "$work/bindwatch.yaml" 2>"$work/agent.log" &
agent=$!
pids+=("$agent")
wait_for "$work/agent.log" 'bindwatch agent started'
grep -o 'msg="bindwatch agent started".*' "$work/agent.log"

echo
echo "== a few binds: a listener, a failed bind (EADDRINUSE), UDP on ::1, MPTCP, IP_FREEBIND"
/usr/bin/python3 - <<'PY'
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0)); l.listen()
try:
    socket.socket().bind(("127.0.0.1", l.getsockname()[1]))
except OSError as e:
    print("  second bind on port", l.getsockname()[1], "failed:", e.strerror)
socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))
socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).bind(("0.0.0.0", 0))
f = socket.socket(); f.setsockopt(socket.SOL_IP, 15, 1); f.bind(("192.0.2.1", 0))
PY

# A process in a cgroup named as Docker's systemd driver names containers.
unified=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
if [ -n "$unified" ]; then
	id=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	mkdir -p "$unified/system.slice"
	cgroup="$unified/system.slice/docker-$id.scope"
	mkdir "$cgroup"
	echo "== a bind from a process in cgroup system.slice/docker-${id:0:12}….scope"
	sh -c "echo \$\$ > '$cgroup/cgroup.procs'; exec /usr/bin/python3 -c 'import socket; socket.socket().bind((\"0.0.0.0\", 0))'"
fi

sleep 0.5
kill -TERM "$agent"
wait "$agent"
grep -o 'msg="bindwatch agent stopped".*' "$work/agent.log"

echo
echo "== bindwatch consume --brokers $brokers --topic $topic --registry $registry --from-beginning"
bin/bindwatch consume --brokers "$brokers" --topic "$topic" --registry "$registry" --from-beginning --timeout 3s >"$work/events.jsonl"
echo "$(wc -l <"$work/events.jsonl") events on the topic; those of the demo's binds:"
grep -E '"comm":"(python3|sh)"' "$work/events.jsonl" || true

echo
echo "== the audit: an agent reporting uid ${demo_uid}'s sockets to $audit_topic, and bindwatch audit on it"
cat >"$work/agent2.yaml" <<EOF
capture:
  pin_dir: ""
  uid: ${demo_uid}
kafka:
  brokers: [${brokers}]
  topic: ${audit_topic}
schema:
  registry_url: ${registry}
spool:
  dir: ${work}/spool2
metrics:
  listen: ""
log:
  format: text
heartbeat:
  # Every second, so that the demo shows a silent host within seconds.
  interval: 1s
EOF
cat >"$work/policy.yaml" <<EOF
# configs/policy.yaml's Debian rules apply on a real host; the demo's own
# services are the loopback listeners of uid ${demo_uid}.
rules:
  - name: demo-loopback-services
    action: allow
    match:
      uid: ${demo_uid}
      exposure: loopback
EOF
cat >"$work/audit.yaml" <<EOF
kafka:
  brokers: [${brokers}]
schema:
  registry_url: ${registry}
audit:
  group: bindwatch-audit-demo
  events_topic: ${audit_topic}
  policy: ${work}/policy.yaml
  batch_timeout: 10ms
metrics:
  listen: 127.0.0.1:29465
EOF
sed -n '/^rules:/,$p' "$work/policy.yaml"
bin/bindwatch run --config "$work/agent2.yaml" 2>"$work/agent2.log" &
agent2=$!
pids+=("$agent2")
wait_for "$work/agent2.log" 'bindwatch agent started'
bin/bindwatch audit --config "$work/audit.yaml" >"$work/findings.jsonl" 2>"$work/audit.log" &
audit=$!
pids+=("$audit")
for p in 0 1 2; do wait_for "$work/audit.log" "partition rebuilt.* partition=$p "; done

echo "== as uid ${demo_uid}: TCP and UDP on 127.0.0.1 (expected), TCP on 0.0.0.0 (unexpected)"
mkfifo "$work/hold"
setpriv --reuid "$demo_uid" --regid "$demo_uid" --clear-groups /usr/bin/python3 -c '
import socket, sys
t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", t.getsockname()[1]))  # an explicit port: a server
x = socket.socket(); x.bind(("0.0.0.0", 0)); x.listen()
print("  tcp 127.0.0.1:%d, udp 127.0.0.1:%d, tcp 0.0.0.0:%d" % (t.getsockname()[1], u.getsockname()[1], x.getsockname()[1]), flush=True)
sys.stdin.read()' <"$work/hold" &
holder=$!
pids+=("$holder")
exec 3>"$work/hold"
wait_for "$work/findings.jsonl" '"state":"open"'
echo
echo "== the finding: bindwatch audit prints it and publishes it to bindwatch.findings"
cat "$work/findings.jsonl"
echo
echo "== bindwatch listeners --brokers $brokers --registry $registry   (the fleet, from the compacted bindwatch.listeners)"
bin/bindwatch listeners --brokers "$brokers" --registry "$registry"
echo
echo "== the agent seals each batch with its host key; the audit pinned that key and verifies every seal"
wait_for "$work/audit.log" 'host seals its records: key pinned'
grep -o 'public_key=[^ ]*' "$work/agent2.log" | head -1 | sed 's/^/  agent: /'
grep -h 'key pinned' "$work/audit.log" | head -1 | sed 's/^/  audit: /'
echo
echo "== the listeners close: the finding is resolved"
exec 3>&-
wait "$holder" || true
wait_for "$work/findings.jsonl" '"state":"resolved"'
grep '"state":"resolved"' "$work/findings.jsonl"
/usr/bin/python3 -c '
import urllib.request
for l in urllib.request.urlopen("http://127.0.0.1:29465/metrics").read().decode().splitlines():
    if l.startswith(("bindwatch_audit_findings_total", "bindwatch_audit_evaluations_total", "bindwatch_audit_events_total")):
        print(" ", l)'
echo "== the findings topic for a SIEM: the first finding as OCSF (consume --format ocsf; ecs for Elastic)"
bin/bindwatch consume --brokers "$brokers" --topic bindwatch.findings --registry "$registry" --from-beginning --max 1 --timeout 5s --format ocsf
echo
echo "== the agent freezes (SIGSTOP): no record for three heartbeat intervals, and the audit says it cannot see the host"
kill -STOP "$agent2"
wait_for "$work/findings.jsonl" '"state":"open".*"reason":"silent"'
grep '"reason":"silent"' "$work/findings.jsonl"
echo "== it thaws (SIGCONT): its next record resolves the coverage finding"
kill -CONT "$agent2"
wait_for "$work/findings.jsonl" '"state":"resolved".*"reason":"silent"'
grep '"state":"resolved".*"reason":"silent"' "$work/findings.jsonl"
opened=$(grep -c '"state":"open".*"kind":"listener"' "$work/findings.jsonl" || true)
integrity=$(grep -c '"kind":"integrity"' "$work/findings.jsonl" || true)
kill -TERM "$audit" "$agent2"
wait "$audit" "$agent2" 2>/dev/null || true
if [ "$opened" != 1 ]; then
	echo "demo: the audit raised $opened listener findings, want 1" >&2
	exit 1
fi
if [ "$integrity" != 0 ]; then
	echo "demo: the audit raised $integrity integrity findings for a host that seals, want none:" >&2
	grep '"kind":"integrity"' "$work/findings.jsonl" >&2
	exit 1
fi
echo "== one unexpected listener, one finding; the expected ones raised nothing; a silent host, one coverage finding"
