# Shared shell functions of make_samples.sh, make_eval.sh and make_rules.sh (sourced, not run).
#
# The sourcing script sets HERE (this directory), NAME (its name, for log lines) and WORK (a
# fresh temporary directory) first. lib.sh sets PY and PIDS, and installs traps that stop every
# process started with bg/start_capture on exit and remove WORK (kept, with its logs shown,
# when the script fails).

PY=${PYTHON:-python3}
PIDS=()
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"

log() { printf '%s %s: %s\n' "$(date +%T)" "$NAME" "$*" >&2; }

# Stop the processes this script started (by pid), politely first.
stop_pids() {
  local pid
  for pid in "$@"; do kill -INT "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  if [ "${#PIDS[@]}" -gt 0 ]; then stop_pids "${PIDS[@]}"; fi
  if [ "$rc" != 0 ]; then
    log "failed (exit $rc); logs kept in $WORK"
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 20 "$f"; } >&2; done
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bg NAME CMD...: start CMD in the background, log to $WORK/NAME.log, remember its pid in $LAST.
bg() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  LAST=$!
  PIDS+=("$LAST")
}

# Wait until a TCP port listens on host:port (max 10 s). Probes come from 127.0.0.1 and are
# made before the capture starts.
wait_port() {
  local host=$1 port=$2
  for _ in $(seq 100); do
    if "$PY" - "$host" "$port" <<'PYEOF' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.2)
s.close()
PYEOF
    sleep 0.1
  done
  log "nothing listens on $host:$port"
  return 1
}

# Root, tcpdump/editcap/tshark, and the pinned Python packages (pip-installed when missing).
check_env() {
  [ "$(id -u)" = 0 ] || { log "run as root (tcpdump, port 502)"; exit 1; }
  for tool in tcpdump editcap tshark; do
    command -v "$tool" >/dev/null || { log "missing $tool (apt-get install tcpdump tshark)"; exit 1; }
  done
  if ! "$PY" - "$HERE/requirements.txt" <<'PYEOF'; then
import sys
from importlib.metadata import version, PackageNotFoundError
ok = True
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    if have != want:
        print(f"{name}: have {have}, want {want}", file=sys.stderr)
        ok = False
sys.exit(0 if ok else 1)
PYEOF
    log "installing pinned Python packages"
    "$PY" -m pip install --quiet -r "$HERE/requirements.txt"
  fi
}

# start_capture FILE FILTER: tcpdump on lo, unbuffered, pid in $TCPDUMP.
start_capture() {
  local file=$1 filter=$2
  tcpdump -i lo -U -Z root -w "$file" "$filter" >"$WORK/tcpdump.log" 2>&1 &
  TCPDUMP=$!
  PIDS+=("$TCPDUMP")
  for _ in $(seq 50); do
    grep -q "listening on" "$WORK/tcpdump.log" && return 0
    sleep 0.1
  done
  log "tcpdump did not start"
  cat "$WORK/tcpdump.log" >&2
  return 1
}

# Stop tcpdump 1 s after the last packet so that it flushes everything.
stop_capture() {
  sleep 1
  stop_pids "$TCPDUMP"
  log "$(tr '\n' ' ' <"$WORK/tcpdump.log")"
}

# Forget pids that have been stopped.
forget() {
  local keep=() pid
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && keep+=("$pid"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}
