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
OUT=${OUT:-$(dirname "$HERE")}
WORK=$(mktemp -d /tmp/otwatch-samples.XXXXXX)
# NET: first three octets of every host (NET=127.0.1 runs beside another run); OUT: where
# the captures go.
NET=${NET:-127.0.0}
NAME=make_samples
# shellcheck source=lib.sh
. "$HERE/lib.sh"

start_plcs() {
  bg plc1 "$PY" "$HERE/modbus_plc.py" --host $NET.10 --port 502 --name PLC-1 \
    --product ATC-100 --units 1 --seed 1 --max-runtime 90
  PLC1=$LAST
  bg plc2 "$PY" "$HERE/modbus_plc.py" --host $NET.11 --port 5020 --name PLC-2 \
    --product ATC-220GW --units 1,2 --seed 2 --max-runtime 90
  PLC2=$LAST
  wait_port $NET.10 502
  wait_port $NET.11 5020
}

make_modbus_plant() {
  log "modbus_plant: start"
  local pcap="$WORK/modbus_plant.pcap"
  start_plcs
  start_capture "$pcap" "host $NET.10 or host $NET.11 or host $NET.20 or host $NET.21 or host $NET.30"
  bg hmi "$PY" "$HERE/modbus_hmi.py" --source $NET.20 --plc1 $NET.10:502 --plc2 $NET.11:5020 --duration 35
  local hmi=$LAST
  bg historian "$PY" "$HERE/modbus_hmi.py" --source $NET.21 --plc1 $NET.10:502 --plc2 $NET.11:5020 \
    --profile historian --duration 35
  local historian=$LAST
  bg eng "$PY" "$HERE/modbus_eng.py" --source $NET.30 --plc1 $NET.10:502 --plc2 $NET.11:5020
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
  start_capture "$pcap" "host $NET.10 or host $NET.11 or host $NET.20 or host $NET.66"
  # A slow HMI keeps polling in the background: normal traffic around the attack.
  bg hmi "$PY" "$HERE/modbus_hmi.py" --source $NET.20 --plc1 $NET.10:502 --plc2 $NET.11:5020 \
    --profile slow --duration 28
  local hmi=$LAST
  bg attack "$PY" "$HERE/modbus_attack.py" --source $NET.66 --plc1 $NET.10:502 --plc2 $NET.11:5020 \
    --labels "$WORK/modbus_attack.labels.tsv"
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
  bg ua1 "$PY" "$HERE/opcua_server.py" --host $NET.10 --port 4840 --name "Tank Farm OPC UA" --seed 1 --max-runtime 60
  local ua1=$LAST
  bg ua2 "$PY" "$HERE/opcua_server.py" --host $NET.11 --port 48400 --path /boiler/ --name "Boiler OPC UA" --seed 2 --max-runtime 60
  local ua2=$LAST
  wait_port $NET.10 4840
  wait_port $NET.11 48400
  start_capture "$pcap" "host $NET.10 or host $NET.11 or host $NET.20 or host $NET.30"
  bg uac "$PY" "$HERE/opcua_clients.py" --hmi $NET.20 --eng $NET.30 \
    --server1 opc.tcp://$NET.10:4840/plant/ --server2 opc.tcp://$NET.11:48400/boiler/
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
