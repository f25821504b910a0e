#!/usr/bin/env bash
# Print tshark's view of the sample captures: packets, Modbus PDUs per function code,
# OPC UA messages per service, malformed frames. Used to fill the table in pcaps/README.md.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for f in "$DIR"/modbus_plant.pcap "$DIR"/opcua_plant.pcap "$DIR"/modbus_attack.pcapng; do
  [ -f "$f" ] || continue
  name=$(basename "$f")
  # Port 5020 (Modbus) and 48400 (OPC UA) are non-standard: tell tshark, as a sensor would
  # have to find out by content.
  case "$name" in
    modbus*) DA=(-d tcp.port==5020,mbtcp) ;;
    *) DA=(-d tcp.port==48400,opcua) ;;
  esac
  echo "== $name ($(stat -c %s "$f") bytes, $(capinfos -T -r -M -F "$f" 2>/dev/null | cut -f2 || echo ?) format)"
  echo "packets: $(tshark 2>/dev/null -r "$f" | wc -l)"
  echo "malformed: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y _ws.malformed | wc -l)"
  echo "expert errors: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y '_ws.expert.severity == error' | wc -l)"
  case "$name" in
    modbus*)
      echo "mbtcp frames: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y mbtcp | wc -l)"
      echo "modbus PDUs: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y modbus -T fields -e modbus.func_code | tr ',' '\n' | grep -c .)"
      echo "modbus PDUs per function code (count fc):"
      tshark 2>/dev/null -r "$f" "${DA[@]}" -Y modbus -T fields -e modbus.func_code | tr ',' '\n' | sort -n | uniq -c | awk '{printf "  %s:%s", $2, $1} END {print ""}'
      echo "exception responses (count exception code):"
      tshark 2>/dev/null -r "$f" "${DA[@]}" -Y modbus.exception_code -T fields -e modbus.exception_code | tr ',' '\n' | sort -n | uniq -c | awk '{printf "  %s:%s", $2, $1} END {print ""}'
      echo "tcp ports: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y mbtcp -T fields -e tcp.srcport -e tcp.dstport | tr '\t' '\n' | grep -xE '502|5020' | sort | uniq -c | tr '\n' ' ')"
      ;;
    opcua*)
      echo "opcua frames: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y opcua | wc -l)"
      echo "opcua messages per type:"
      tshark 2>/dev/null -r "$f" "${DA[@]}" -Y opcua -T fields -e opcua.transport.type | tr ',' '\n' | sort | uniq -c | awk '{printf "  %s:%s", $2, $1} END {print ""}'
      echo "opcua services (count nodeid):"
      tshark 2>/dev/null -r "$f" "${DA[@]}" -Y opcua -T fields -e opcua.servicenodeid.numeric | tr ',' '\n' | grep . | sort -n | uniq -c | awk '{printf "  %s:%s", $2, $1} END {print ""}'
      echo "tcp ports: $(tshark 2>/dev/null -r "$f" "${DA[@]}" -Y opcua -T fields -e tcp.srcport -e tcp.dstport | tr '\t' '\n' | grep -xE '4840|48400' | sort | uniq -c | tr '\n' ' ')"
      ;;
  esac
done
# Check that every Modbus PDU to or from the attacker falls inside a labelled window.
if [ -f "$DIR/modbus_attack.labels.tsv" ] && [ -f "$DIR/modbus_attack.pcapng" ]; then
  echo "== modbus_attack.labels.tsv: attacker packets / Modbus PDUs per labelled window"
  tshark 2>/dev/null -r "$DIR/modbus_attack.pcapng" -d tcp.port==5020,mbtcp -Y 'ip.addr==127.0.0.66' \
    -T fields -e frame.time_epoch -e modbus.func_code |
    python3 -c '
import sys, datetime as dt
def ts(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()][1:]
wins = [(ts(a), ts(b), lab) for a, b, lab, _ in rows]
count = {lab: [0, 0] for _, _, lab in wins}
outside = [0, 0]
for line in sys.stdin:
    t, fcs = line.rstrip("\n").split("\t")
    pdus = len([f for f in fcs.split(",") if f])
    hit = [lab for a, b, lab in wins if a <= float(t) <= b]
    c = count[hit[0]] if hit else outside
    c[0] += 1
    c[1] += pdus
for _, _, lab in wins:
    print(f"  {lab}: {count[lab][0]} packets, {count[lab][1]} PDUs")
print(f"  outside any window: {outside[0]} packets, {outside[1]} PDUs")
' "$DIR/modbus_attack.labels.tsv"
fi
