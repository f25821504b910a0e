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
OUT=${OUT:-$(dirname "$HERE")/eval}
WORK=$(mktemp -d /tmp/otwatch-eval.XXXXXX)
TRAIN_S=${TRAIN_S:-360}
NORMAL_S=${NORMAL_S:-360}
ATTACK_S=${ATTACK_S:-240}
SOAK_S=${SOAK_S:-3600}
# NET: first three octets of every host (NET=127.0.1 runs beside another run); OUT: where
# the captures go.
NET=${NET:-127.0.0}
NAME=make_eval
# shellcheck source=lib.sh
. "$HERE/lib.sh"


# scenario NAME SEED DURATION [FREEZE_AT]: servers, capture, normal traffic (and attacks when
# FREEZE_AT is given); the capture goes to $WORK/NAME.pcap.
scenario() {
  local name=$1 seed=$2 duration=$3 freeze=${4:-}
  local pcap="$WORK/$name.pcap" runtime=$((duration + 60)) labels="$WORK/$name.labels"
  log "$name: start ($duration s)"
  : >"$labels"
  local freeze_args=()
  [ -n "$freeze" ] && freeze_args=(--freeze-at "$freeze" --freeze-for 45 --labels "$labels")
  bg plc1 "$PY" "$HERE/eval_plc.py" --host $NET.10 --port 502 --name PLC-1 --product ATC-100 \
    --units 1 --seed "$seed" --max-runtime "$runtime" "${freeze_args[@]}"
  local plc1=$LAST
  bg plc2 "$PY" "$HERE/eval_plc.py" --host $NET.11 --port 5020 --name PLC-2 --product ATC-220GW \
    --units 1,2 --seed "$((seed + 10))" --max-runtime "$runtime"
  local plc2=$LAST
  bg ua "$PY" "$HERE/opcua_server.py" --host $NET.10 --port 4840 --name "Tank Farm OPC UA" \
    --seed "$seed" --max-runtime "$runtime"
  local ua=$LAST
  wait_port $NET.10 502
  wait_port $NET.11 5020
  wait_port $NET.10 4840
  start_capture "$pcap" "host $NET.10 or host $NET.11"
  bg traffic "$PY" "$HERE/eval_traffic.py" --seed "$seed" --duration "$duration" --hmi $NET.20 \
    --historian $NET.21 --eng $NET.30 --plc1 $NET.10:502 --plc2 $NET.11:5020 --opcua "opc.tcp://$NET.10:4840/plant/"
  local traffic=$LAST
  if [ -n "$freeze" ]; then
    bg attacks "$PY" "$HERE/eval_attacks.py" --labels "$labels" --attacker $NET.66 --newhost $NET.67 \
      --writer $NET.68 --eng $NET.30 --historian $NET.21 --plc1 $NET.10:502 --plc2 $NET.11:5020 \
      --opcua "opc.tcp://$NET.10:4840/plant/"
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
