#!/usr/bin/env bash
# Make the labelled evaluation scenarios in pcaps/eval/ with real stacks on loopback.
#
# Usage: pcaps/scripts/make_eval.sh [attacks|train|normal|all|soak]...
#
# A stationary plant (eval_plc.py: a 60 s fill/drain cycle) with two Modbus PLCs and an OPC UA
# server, polled by eval_traffic.py (HMI, historian, engineering station, OPC UA HMI):
#   train.pcap       ~6 min normal traffic, seed 1 (learn the baseline on this)
#   normal.pcap      ~6 min normal traffic, seed 2 (count false alerts on this)
#   attacks.pcapng   ~4 min normal traffic, seed 3, with the attacks of eval_attacks.py and a
#                    frozen tank level (eval_plc.py --freeze-at); windows in attacks.labels.tsv
#   soak.pcap        ~60 min normal traffic, seed 4 (false alerts per hour; not part of "all")
# Needs root (tcpdump on lo, port 502), tcpdump, editcap, tshark, and requirements.txt.
# Hosts: 127.0.0.10 PLC 1 (Modbus 502, OPC UA 4840), 127.0.0.11 PLC 2 (Modbus 5020, units 1
# and 2), 127.0.0.20 HMI, 127.0.0.21 historian, 127.0.0.30 engineering station, 127.0.0.66,
# 127.0.0.67 and 127.0.0.68 unknown hosts. Traffic goes to loopback addresses only. About 17 minutes in all.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(dirname "$HERE")/eval
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/otwatch-eval.XXXXXX)
PIDS=()
TRAIN_S=${TRAIN_S:-360}
NORMAL_S=${NORMAL_S:-360}
ATTACK_S=${ATTACK_S:-240}
SOAK_S=${SOAK_S:-3600}
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"

log() { printf '%s make_eval: %s\n' "$(date +%T)" "$*" >&2; }

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
    if "$PY" - "$host" "$port" <<'EOF' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.2)
s.close()
EOF
    sleep 0.1
  done
  log "nothing listens on $host:$port"
  return 1
}

check_env() {
  [ "$(id -u)" = 0 ] || { log "run as root (tcpdump, port 502)"; exit 1; }
  for tool in tcpdump editcap tshark; do
    command -v "$tool" >/dev/null || { log "missing $tool (apt-get install tcpdump tshark)"; exit 1; }
  done
  if ! "$PY" - "$HERE/requirements.txt" <<'EOF'; then
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
EOF
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


# scenario NAME SEED DURATION [FREEZE_AT]: servers, capture, normal traffic (and attacks when
# FREEZE_AT is given); the capture goes to $WORK/NAME.pcap.
scenario() {
  local name=$1 seed=$2 duration=$3 freeze=${4:-}
  local pcap="$WORK/$name.pcap" runtime=$((duration + 60)) labels="$WORK/$name.labels"
  log "$name: start ($duration s)"
  : >"$labels"
  local freeze_args=()
  [ -n "$freeze" ] && freeze_args=(--freeze-at "$freeze" --freeze-for 45 --labels "$labels")
  bg plc1 "$PY" "$HERE/eval_plc.py" --host 127.0.0.10 --port 502 --name PLC-1 --product ATC-100 \
    --units 1 --seed "$seed" --max-runtime "$runtime" "${freeze_args[@]}"
  local plc1=$LAST
  bg plc2 "$PY" "$HERE/eval_plc.py" --host 127.0.0.11 --port 5020 --name PLC-2 --product ATC-220GW \
    --units 1,2 --seed "$((seed + 10))" --max-runtime "$runtime"
  local plc2=$LAST
  bg ua "$PY" "$HERE/opcua_server.py" --host 127.0.0.10 --port 4840 --name "Tank Farm OPC UA" \
    --seed "$seed" --max-runtime "$runtime"
  local ua=$LAST
  wait_port 127.0.0.10 502
  wait_port 127.0.0.11 5020
  wait_port 127.0.0.10 4840
  start_capture "$pcap" "host 127.0.0.10 or host 127.0.0.11"
  bg traffic "$PY" "$HERE/eval_traffic.py" --seed "$seed" --duration "$duration"
  local traffic=$LAST
  if [ -n "$freeze" ]; then
    bg attacks "$PY" "$HERE/eval_attacks.py" --labels "$labels"
    wait "$LAST"
  fi
  wait "$traffic"
  sleep 0.5
  stop_pids "$plc1" "$plc2" "$ua"
  stop_capture
  forget
  log "$name: done"
}

main() {
  local targets=("$@")
  [ "${#targets[@]}" = 0 ] && targets=(all)
  check_env
  mkdir -p "$OUT"
  local start=$SECONDS
  for t in "${targets[@]}"; do
    case "$t" in
      train|all)
        scenario train 1 "$TRAIN_S"
        cp "$WORK/train.pcap" "$OUT/train.pcap" ;;&
      normal|all)
        scenario normal 2 "$NORMAL_S"
        cp "$WORK/normal.pcap" "$OUT/normal.pcap" ;;&
      attacks|all)
        scenario attacks 3 "$ATTACK_S" 150
        editcap -F pcapng "$WORK/attacks.pcap" "$OUT/attacks.pcapng"
        { printf 'start\tend\tlabel\tip\tdescription\n'; sort "$WORK/attacks.labels"; } >"$OUT/attacks.labels.tsv" ;;
      soak)
        scenario soak 4 "$SOAK_S"
        cp "$WORK/soak.pcap" "$OUT/soak.pcap" ;;
      train|normal|attacks|all) ;;
      *) log "unknown target $t"; exit 2 ;;
    esac
  done
  log "all done in $((SECONDS - start)) s"
  ls -l "$OUT" >&2
}

main "$@"
