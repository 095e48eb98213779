#!/usr/bin/env bash
# make demo: a few seconds of `bindwatch snoop` while a few binds happen.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "make demo loads BPF programs: run it as root (sudo make demo)" >&2
	exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
bin/bindwatch snoop -t -E -U --duration 4s >"$out" &
snoop=$!
sleep 1.5 # loading and attaching
/usr/bin/python3 - <<'PY'
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0)); l.listen()
port = l.getsockname()[1]
try:
    socket.socket().bind(("127.0.0.1", port))          # EADDRINUSE
except OSError:
    pass
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(("::1", 0))
m = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262); m.bind(("0.0.0.0", 0))  # MPTCP
f = socket.socket(); f.setsockopt(socket.SOL_IP, 15, 1); f.bind(("192.0.2.1", 0))   # IP_FREEBIND
PY
wait "$snoop"
cat "$out"
