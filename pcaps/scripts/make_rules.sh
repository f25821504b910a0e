#!/usr/bin/env bash
# Make the rule-pack test captures in pcaps/rules/ with real stacks on loopback: one capture of
# a few seconds per step of rules_traffic.py, each made to fire one rule (or a small group) of
# rules/*.toml. pcaps/rules/site.toml and expect.tsv are written by hand (see ../rules/README.md).
#
# Usage: pcaps/scripts/make_rules.sh [STEP]...   (default: every step; names in rules_traffic.py)
#
# Needs root (tcpdump on lo, port 502), tcpdump, editcap, tshark, and requirements.txt.
# Hosts ($NET.x, NET=127.0.0 by default):
#   .100 PLC (Modbus 502, unit 1)   .101 gateway (units 1, 2; exception 11 for others)
#   .102 gateway that stays silent for unknown units
#   .110 / .111 / .112 OPC UA servers (4840, security None, anonymous and user-name logins)
#   .120 engineering station   .121 HMI   .130 unknown host
# About 90 s in all. Traffic goes to loopback addresses only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${OUT:-$(dirname "$HERE")/rules}
WORK=$(mktemp -d /tmp/otwatch-rules.XXXXXX)
# NET: first three octets of every host; OUT: where the captures go.
NET=${NET:-127.0.0}
NAME=make_rules
# shellcheck source=lib.sh
. "$HERE/lib.sh"

STEPS=(listen_only restart_comm clear_counters umas_download umas_stop_start write_foreign
  program_foreign identify_foreign fc_scan address_scan unit_scan unit_scan_silent
  opcua_insecure opcua_anonymous opcua_write opcua_call)

start_servers() {
  bg plc "$PY" "$HERE/modbus_plc.py" --host "$NET.100" --port 502 --name PLC-R --product ATC-100 \
    --units 1 --seed 5 --max-runtime 600
  bg gw "$PY" "$HERE/modbus_plc.py" --host "$NET.101" --port 502 --name GW-R --product ATC-220GW \
    --units 1,2 --seed 6 --max-runtime 600
  bg gws "$PY" "$HERE/modbus_plc.py" --host "$NET.102" --port 502 --name GW-S --product ATC-220GW \
    --units 1 --seed 7 --max-runtime 600 --silent-unknown-units
  bg ua1 "$PY" "$HERE/opcua_server.py" --host "$NET.110" --name "Login OPC UA" --seed 1 --max-runtime 600
  bg ua2 "$PY" "$HERE/opcua_server.py" --host "$NET.111" --name "Legacy OPC UA" --seed 2 --max-runtime 600
  bg ua3 "$PY" "$HERE/opcua_server.py" --host "$NET.112" --name "Tank OPC UA" --seed 3 --max-runtime 600
  local h
  for h in 100 101 102; do wait_port "$NET.$h" 502; done
  for h in 110 111 112; do wait_port "$NET.$h" 4840; done
}

# capture STEP: run one step of rules_traffic.py under tcpdump into $OUT/<capture>.pcap.
capture() {
  local step=$1 name
  case "$step" in
    opcua_*) name=$step ;;
    *) name=modbus_$step ;;
  esac
  log "$name: start"
  start_capture "$WORK/$name.pcap" \
    "host $NET.100 or host $NET.101 or host $NET.102 or host $NET.110 or host $NET.111 or host $NET.112"
  sleep 0.2
  "$PY" "$HERE/rules_traffic.py" "$step" --plc "$NET.100:502" --gateway "$NET.101:502" \
    --silent-gateway "$NET.102:502" --ua-login "opc.tcp://$NET.110:4840/plant/" \
    --ua-insecure "opc.tcp://$NET.111:4840/plant/" --ua-open "opc.tcp://$NET.112:4840/plant/" \
    --eng "$NET.120" --hmi "$NET.121" --unknown "$NET.130" >"$WORK/$name.log" 2>&1
  stop_capture
  forget
  cp "$WORK/$name.pcap" "$OUT/$name.pcap"
  log "$name: done ($(stat -c %s "$OUT/$name.pcap") bytes)"
}

main() {
  local steps=("$@")
  [ "${#steps[@]}" = 0 ] && steps=("${STEPS[@]}")
  check_env
  mkdir -p "$OUT"
  local start=$SECONDS
  start_servers
  local s
  for s in "${steps[@]}"; do capture "$s"; done
  log "all done in $((SECONDS - start)) s"
}

main "$@"
