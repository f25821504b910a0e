#!/usr/bin/env bash
# tshark's view of the evaluation scenarios in pcaps/eval/: packets, Modbus PDUs, OPC UA
# messages, malformed frames and expert errors, and a check that every packet from the
# unknown hosts (127.0.0.66-68) lies inside a labelled window.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../eval" && pwd)
DA=(-d tcp.port==5020,mbtcp)
for f in "$DIR"/train.pcap "$DIR"/normal.pcap "$DIR"/attacks.pcapng; do
  [ -f "$f" ] || continue
  echo "== $(basename "$f") ($(stat -c %s "$f") bytes, $(capinfos -u -M "$f" 2>/dev/null | awk -F': *' '/duration/ {print $2}'))"
  echo "packets: $(tshark 2>/dev/null -r "$f" | wc -l)"
  echo "malformed: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y _ws.malformed | wc -l)"
  echo "expert errors: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y '_ws.expert.severity == error' | wc -l)"
  echo "modbus PDUs: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y modbus -T fields -e modbus.func_code | tr ',' '\n' | grep -c .)"
  echo "opcua messages: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y opcua -T fields -e opcua.transport.type | tr ',' '\n' | grep -c .)"
done
L="$DIR/attacks.labels.tsv"
if [ -f "$L" ]; then
  outside=$(tshark 2>/dev/null -r "$DIR/attacks.pcapng" -Y 'ip.addr == 127.0.0.66 || ip.addr == 127.0.0.67 || ip.addr == 127.0.0.68' \
    -T fields -e frame.time_epoch | python3 -c '
import sys, datetime as dt
def ep(s): return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
w = [(ep(l.split("\t")[0]), ep(l.split("\t")[1])) for l in open(sys.argv[1]).read().splitlines()[1:] if l]
print(sum(1 for t in map(float, sys.stdin) if not any(a - 0.001 <= t <= b + 0.001 for a, b in w)))' "$L")
  echo "packets of 127.0.0.66-68 outside every label window: $outside"
fi
