#!/usr/bin/env bash
# Regenerate the sample captures in pcaps/ with real stacks (pymodbus, asyncua) on loopback.
#
# Usage: pcaps/scripts/make_samples.sh [modbus_plant|opcua_plant|modbus_attack|all]...
#
# Needs root (tcpdump on lo, Modbus port 502), tcpdump, editcap and tshark, Python 3.11 with
# the packages in requirements.txt (installed with pip when missing or of another version).
# Every server and client runs in the background on its own 127.0.0.x address:
#   127.0.0.10 PLC 1 (Modbus 502) / OPC UA server (4840)
#   127.0.0.11 PLC 2 (Modbus gateway on 5020, units 1 and 2) / OPC UA server (48400)
#   127.0.0.20 HMI/SCADA client   127.0.0.21 SCADA historian (Modbus only)
#   127.0.0.30 engineering station   127.0.0.66 attacker (Modbus only)
# Each capture takes under 60 s; the script stops everything it started, also on error.
# Traffic goes to loopback addresses only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(dirname "$HERE")
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/otwatch-samples.XXXXXX)
PIDS=()

log() { printf '%s make_samples: %s\n' "$(date +%T)" "$*" >&2; }

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

start_plcs() {
  bg plc1 "$PY" "$HERE/modbus_plc.py" --host 127.0.0.10 --port 502 --name PLC-1 \
    --product ATC-100 --units 1 --seed 1 --max-runtime 90
  PLC1=$LAST
  bg plc2 "$PY" "$HERE/modbus_plc.py" --host 127.0.0.11 --port 5020 --name PLC-2 \
    --product ATC-220GW --units 1,2 --seed 2 --max-runtime 90
  PLC2=$LAST
  wait_port 127.0.0.10 502
  wait_port 127.0.0.11 5020
}

make_modbus_plant() {
  log "modbus_plant: start"
  local pcap="$WORK/modbus_plant.pcap"
  start_plcs
  start_capture "$pcap" "host 127.0.0.10 or host 127.0.0.11 or host 127.0.0.20 or host 127.0.0.21 or host 127.0.0.30"
  bg hmi "$PY" "$HERE/modbus_hmi.py" --source 127.0.0.20 --duration 35
  local hmi=$LAST
  bg historian "$PY" "$HERE/modbus_hmi.py" --source 127.0.0.21 --profile historian --duration 35
  local historian=$LAST
  bg eng "$PY" "$HERE/modbus_eng.py" --source 127.0.0.30
  local eng=$LAST
  wait "$hmi"
  wait "$historian"
  wait "$eng"
  sleep 0.5
  stop_pids "$PLC1" "$PLC2"
  stop_capture
  forget
  cp "$pcap" "$OUT/modbus_plant.pcap"
  log "modbus_plant: done"
}

make_modbus_attack() {
  log "modbus_attack: start"
  local pcap="$WORK/modbus_attack.pcap"
  start_plcs
  start_capture "$pcap" "host 127.0.0.10 or host 127.0.0.11 or host 127.0.0.20 or host 127.0.0.66"
  # A slow HMI keeps polling in the background: normal traffic around the attack.
  bg hmi "$PY" "$HERE/modbus_hmi.py" --source 127.0.0.20 --profile slow --duration 28
  local hmi=$LAST
  bg attack "$PY" "$HERE/modbus_attack.py" --source 127.0.0.66 --labels "$WORK/modbus_attack.labels.tsv"
  local attack=$LAST
  wait "$attack"
  wait "$hmi"
  sleep 0.5
  stop_pids "$PLC1" "$PLC2"
  stop_capture
  forget
  editcap -F pcapng "$pcap" "$OUT/modbus_attack.pcapng"
  cp "$WORK/modbus_attack.labels.tsv" "$OUT/modbus_attack.labels.tsv"
  log "modbus_attack: done"
}

make_opcua_plant() {
  log "opcua_plant: start"
  local pcap="$WORK/opcua_plant.pcap"
  bg ua1 "$PY" "$HERE/opcua_server.py" --host 127.0.0.10 --port 4840 --name "Tank Farm OPC UA" --seed 1 --max-runtime 60
  local ua1=$LAST
  bg ua2 "$PY" "$HERE/opcua_server.py" --host 127.0.0.11 --port 48400 --path /boiler/ --name "Boiler OPC UA" --seed 2 --max-runtime 60
  local ua2=$LAST
  wait_port 127.0.0.10 4840
  wait_port 127.0.0.11 48400
  start_capture "$pcap" "host 127.0.0.10 or host 127.0.0.11 or host 127.0.0.20 or host 127.0.0.30"
  bg uac "$PY" "$HERE/opcua_clients.py" --hmi 127.0.0.20 --eng 127.0.0.30 \
    --server1 opc.tcp://127.0.0.10:4840/plant/ --server2 opc.tcp://127.0.0.11:48400/boiler/
  local uac=$LAST
  wait "$uac"
  sleep 0.5
  stop_pids "$ua1" "$ua2"
  stop_capture
  forget
  cp "$pcap" "$OUT/opcua_plant.pcap"
  log "opcua_plant: done"
}

main() {
  local targets=("$@")
  [ "${#targets[@]}" = 0 ] && targets=(all)
  check_env
  local start=$SECONDS
  for t in "${targets[@]}"; do
    case "$t" in
      modbus_plant) make_modbus_plant ;;
      opcua_plant) make_opcua_plant ;;
      modbus_attack) make_modbus_attack ;;
      all) make_modbus_plant; make_opcua_plant; make_modbus_attack ;;
      *) log "unknown target $t"; exit 2 ;;
    esac
  done
  log "all done in $((SECONDS - start)) s"
  "$HERE/validate.sh"
}

main "$@"
