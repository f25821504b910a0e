#!/usr/bin/env bash
# Side by side on one generated capture: a bare pcap walk (upper bound), `otwatch detect`
# (single-threaded) and Suricata 7 with its Modbus parser and Modbus event rules; on two cores or
# more also `otwatch detect --threads 2`, the pipeline alone (`otwatch stats`), which bounds it, and
# the capture's two halves by device as two processes at once: what a split by device could give.
#
#   benches/sidebyside.sh                    # 3M packets, 5 runs each, medians
#   PACKETS=500000 RUNS=3 benches/sidebyside.sh
#
# Environment: PGO (1: also time a profile-guided build made by benches/pgo.sh; 0: skip it),
# PROFILE (dist), PACKETS (3000000), RUNS (5), SEED (1), OPCUA_SHARE (0.05: Modbus-heavy, as
# Suricata has no OPC UA parser), LOSS (0), REORDER (0.0002), WORK (/tmp/otwatch-sidebyside). The baseline for detect is
# learnt with `otwatch learn` on a separate capture: same plant, seed SEED+1, PACKETS/4 packets.
set -euo pipefail

PACKETS=${PACKETS:-3000000}
RUNS=${RUNS:-5}
SEED=${SEED:-1}
OPCUA_SHARE=${OPCUA_SHARE:-0.05}
# No loss by default: after a gap Suricata stops parsing Modbus on that flow
# (app_layer.error.modbus.gap) and would then do less work than otwatch, which resyncs.
LOSS=${LOSS:-0}
REORDER=${REORDER:-0.0002}
WORK=${WORK:-/tmp/otwatch-sidebyside}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$WORK"

cd "$ROOT"
# The `dist` profile (fat LTO, one code unit) is what a deployment runs; PROFILE=release for the
# development build.
PROFILE=${PROFILE:-dist}
cargo build --profile "$PROFILE" --quiet --bin otwatch --bin otwatch-gen --example walk --example pingpong \
    --example by_device
OTWATCH=$TARGET/$PROFILE/otwatch
GEN=$TARGET/$PROFILE/otwatch-gen
WALK=$TARGET/$PROFILE/examples/walk
PINGPONG=$TARGET/$PROFILE/examples/pingpong
BYDEV=$TARGET/$PROFILE/examples/by_device

CAP=$WORK/plant-s$SEED-p$PACKETS-u$OPCUA_SHARE-l$LOSS-r$REORDER.pcap
LEARNCAP=$WORK/plant-s$((SEED + 1))-p$((PACKETS / 4))-u$OPCUA_SHARE-l$LOSS-r$REORDER.pcap
BASELINE=$WORK/baseline-s$((SEED + 1))-p$((PACKETS / 4))-u$OPCUA_SHARE-l$LOSS-r$REORDER.json
[ -s "$CAP" ] || "$GEN" "$CAP" --seed "$SEED" --packets "$PACKETS" --opcua-share "$OPCUA_SHARE" --loss "$LOSS" --reorder "$REORDER"
[ -s "$LEARNCAP" ] || "$GEN" "$LEARNCAP" --seed $((SEED + 1)) --packets $((PACKETS / 4)) --opcua-share "$OPCUA_SHARE" --loss "$LOSS" --reorder "$REORDER"
[ -s "$BASELINE" ] || "$OTWATCH" learn -o "$BASELINE" "$LEARNCAP"

# The profile-guided build (benches/pgo.sh trains it on other captures): it must write the same
# alerts as the plain build, byte for byte, or the run stops.
PGO=${PGO:-1}
if [ "$PGO" = 1 ]; then
    OTWATCH_PGO=$(benches/pgo.sh)
    "$OTWATCH" detect --baseline "$BASELINE" "$CAP" > "$WORK/alerts-plain.jsonl" 2>/dev/null
    "$OTWATCH_PGO" detect --baseline "$BASELINE" "$CAP" > "$WORK/alerts-pgo.jsonl" 2>/dev/null
    cmp -s "$WORK/alerts-plain.jsonl" "$WORK/alerts-pgo.jsonl" || { echo "PGO build's alerts differ from the plain build's" >&2; exit 1; }
fi

# One page cache state for every run: the capture as a first read from disk leaves it. Its
# pages are dropped (written back first; `dd iflag=nocache count=0` needs no root) and read
# back once in order, so the page cache holds them in readahead's large folios. Left as the
# generator's writes (or page faults) made it, in small folios, the same capture read ~15 %
# slower through otwatch's map and twice as slow through the walk's reads, with Suricata
# unchanged (6.18 kernel, ext4): the ratios depended on the capture's history.
sync "$CAP"
dd if="$CAP" iflag=nocache count=0 status=none
cat "$CAP" > /dev/null

read -r NPKT NBYTES _ _ < <("$WALK" "$CAP")
FILEBYTES=$(stat -c %s "$CAP")

# otwatch detect: single-threaded (--threads 1 when this build has the option); the shipped
# rules pack runs by default when the build has a rules engine.
DETECT_ARGS=(detect --baseline "$BASELINE" --output /dev/null)
if "$OTWATCH" detect --help | grep -q -- '--threads'; then DETECT_ARGS+=(--threads 1); fi

# Suricata: single runmode, no checksum checks, Modbus on 502, unlimited stream depth, only
# stats out (eve-log with the stats type alone), Suricata's own Modbus event rules.
RULES_DIR=""
for d in /etc/suricata/rules /usr/share/suricata/rules /var/lib/suricata/rules; do
    if [ -f "$d/modbus-events.rules" ]; then RULES_DIR=$d; break; fi
done
[ -n "$RULES_DIR" ] || { echo "modbus-events.rules not found" >&2; exit 1; }
SURI_LOG=$WORK/suricata-log
mkdir -p "$SURI_LOG"
cat > "$WORK/suricata.yaml" <<YAML
%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "[10.0.0.0/8]"
    EXTERNAL_NET: "any"
  port-groups:
    MODBUS_PORTS: "502"
default-rule-path: $RULES_DIR
rule-files:
  - modbus-events.rules
classification-file: /etc/suricata/classification.config
reference-config-file: /etc/suricata/reference.config
default-log-dir: $SURI_LOG
stats:
  enabled: yes
  interval: 3600
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - stats:
            totals: yes
            threads: no
app-layer:
  protocols:
    modbus:
      enabled: yes
      detection-ports:
        dp: 502
stream:
  reassembly:
    depth: 0
logging:
  default-log-level: notice
  outputs:
    - console:
        enabled: yes
YAML
SURI_ARGS=(-c "$WORK/suricata.yaml" --runmode single -k none -r "$CAP" -l "$SURI_LOG")

# Runs are interleaved (one run of every command per round, RUNS rounds) so that a change in
# the machine's load hits every command alike; each figure is the median of its RUNS runs.
declare -A TIMES
# Each timed run starts on a warm page cache: the capture is read through once, untimed, just
# before. On a virtual machine whose host takes back page cache (seen on a Firecracker VM with a
# balloon: ~1.2 MB/s of the capture's cached pages dropped while idle), the pages dropped since
# the previous run would otherwise be read from disk inside the next timed run, ~20 ms of a
# 0.32 s otwatch run for 27 MB missing.
time_once() {
    local name=$1; shift
    local t0 t1
    cat "$CAP" > /dev/null
    t0=$(date +%s.%N)
    "$@" > /dev/null 2>"$WORK/$name.stderr"
    t1=$(date +%s.%N)
    TIMES[$name]+="$(echo "$t1 - $t0" | bc -l) "
}
median() {
    printf '%s\n' ${TIMES[$1]} | sort -g | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.3f\n", m}'
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "capture: $CAP: $NPKT packets, $NBYTES captured bytes, $FILEBYTES file bytes; $RUNS runs each, median"
echo "baseline: $BASELINE (learnt on $LEARNCAP)"

THREADS2=0
if "$OTWATCH" detect --help | grep -q -- '--threads' && [ "$(nproc)" -ge 2 ]; then THREADS2=1; fi
DETECT2_ARGS=(detect --baseline "$BASELINE" --output /dev/null --threads 2)
# The pipeline alone (read, decode, flows, reassembly, parsing; no detection): what the one
# worker of `--threads 2` runs, while the calling thread runs the rest of `detect --threads 1`
# (detection, the baseline's load). Two threads take at least the longer of the two parts, before
# the cost of passing the events over: one thread's time over it bounds their gain.
PIPELINE_ARGS=(stats --threads 1)
# Two threads pass every event between two cores: their figure follows the cores' cache-line
# round trip, which on a virtual machine moves with the host's placement of its CPUs.
if [ "$THREADS2" = 1 ]; then RTT_BEFORE=$("$PINGPONG" | awk '{print $3}'); fi
# What a split of the whole work by device could give on two cores: the capture cut in two by
# device (`examples/by_device.rs`: every device's traffic whole in one half, the halves about equal
# in packets), each half's `detect --threads 1` run as a process of its own, both at once. Nothing
# passes between them and each has its own caches, which a design inside one process would have to
# match (and it would still have to share what spans devices); "evenly balanced" takes the mean of
# the halves' times alone instead of the longer.
DEV=${CAP%.pcap}-dev
if [ "$THREADS2" = 1 ]; then
    [ -s "${DEV}1.pcap" ] || "$BYDEV" split "$CAP" "$DEV" > /dev/null
    # As the capture: dropped from the page cache and read back once, in readahead's folios.
    for h in "${DEV}0.pcap" "${DEV}1.pcap"; do
        sync "$h"
        dd if="$h" iflag=nocache count=0 status=none
        cat "$h" > /dev/null
    done
fi
time_halves() {
    local t0 t1 p0 p1
    cat "${DEV}0.pcap" "${DEV}1.pcap" > /dev/null
    t0=$(date +%s.%N)
    "$OTWATCH" "${DETECT_ARGS[@]}" "${DEV}0.pcap" > /dev/null 2>"$WORK/halves0.stderr" &
    p0=$!
    "$OTWATCH" "${DETECT_ARGS[@]}" "${DEV}1.pcap" > /dev/null 2>"$WORK/halves1.stderr" &
    p1=$!
    # Each waited for by its id, so that a failed half stops the script (set -e).
    wait "$p0"
    wait "$p1"
    t1=$(date +%s.%N)
    TIMES[halves]+="$(echo "$t1 - $t0" | bc -l) "
}
for _ in $(seq "$RUNS"); do
    time_once walk "$WALK" "$CAP"
    time_once walkmap "$WALK" --otwatch "$CAP"
    time_once otwatch "$OTWATCH" "${DETECT_ARGS[@]}" "$CAP"
    if [ "$THREADS2" = 1 ]; then
        time_once otwatch2 "$OTWATCH" "${DETECT2_ARGS[@]}" "$CAP"
        time_once pipeline "$OTWATCH" "${PIPELINE_ARGS[@]}" "$CAP"
        time_halves
        time_once half0 "$OTWATCH" "${DETECT_ARGS[@]}" "${DEV}0.pcap"
        time_once half1 "$OTWATCH" "${DETECT_ARGS[@]}" "${DEV}1.pcap"
    fi
    if [ "$PGO" = 1 ]; then time_once otwatch_pgo "$OTWATCH_PGO" "${DETECT_ARGS[@]}" "$CAP"; fi
    rm -f "$SURI_LOG/eve.json"
    time_once suricata suricata "${SURI_ARGS[@]}"
done
T_WALK_READ=$(median walk)
T_WALK_MAP=$(median walkmap)
# The bound is the faster of the two walks.
T_WALK=$(awk -v a="$T_WALK_READ" -v b="$T_WALK_MAP" 'BEGIN { print (a < b) ? a : b }')
T_OTW=$(median otwatch)
T_SURI=$(median suricata)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$THREADS2" = 1 ]; then
    echo "cross-core round trip (examples/pingpong): ${RTT_BEFORE} ns before, $("$PINGPONG" | awk '{print $3}') ns after"
fi

# otwatch's own counters on the same capture, then Suricata's last stats record: proof that
# both parsed Modbus, and how much.
"$OTWATCH" stats --json "$CAP" > "$WORK/otwatch-stats.json"
python3 - "$SURI_LOG/eve.json" "$WORK/otwatch-stats.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[2]))
print(f"otwatch stats: modbus.transactions {o['modbus']['transactions']}, modbus.pdus {o['modbus']['pdus']}, "
      f"opcua.messages {o['opcua']['messages']}, reassembly.gaps {o['reassembly']['gaps']}")
last = None
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event_type") == "stats":
        last = r["stats"]
if last is None:
    sys.exit("suricata: no stats record in eve.json")
al = last.get("app_layer", {})
flows = al.get("flow", {}).get("modbus", 0)
tx = al.get("tx", {}).get("modbus", 0)
pk = last.get("decoder", {}).get("pkts", 0)
gaps = al.get("error", {}).get("modbus", {}).get("gap", 0)
print(f"suricata stats: decoder.pkts {pk}, app_layer.flow.modbus {flows}, app_layer.tx.modbus {tx}, "
      f"app_layer.error.modbus.gap {gaps}, detect.alert {last.get('detect', {}).get('alert', 0)}")
if flows == 0 or tx == 0:
    sys.exit("suricata did not parse Modbus")
PY

row() {
    awk -v n="$1" -v t="$2" -v p="$NPKT" -v b="$FILEBYTES" \
        'BEGIN { printf "| %-34s | %8.3f s | %10.0f packets/s | %8.1f MB/s |\n", n, t, p / t, b / t / 1e6 }'
}
echo
echo "| tool | median wall | packets/s | MB/s (file) |"
echo "|---|---|---|---|"
row "walk (pcap-parser, read only)" "$T_WALK_READ"
row "walk (otwatch reader, mapped)" "$T_WALK_MAP"
row "otwatch detect ${DETECT_ARGS[*]:5}" "$T_OTW"
if [ "$THREADS2" = 1 ]; then
    T_OTW2=$(median otwatch2); row "otwatch detect ${DETECT2_ARGS[*]:5}" "$T_OTW2"
    T_PIPE=$(median pipeline); row "otwatch ${PIPELINE_ARGS[*]} (no detection)" "$T_PIPE"
fi
if [ "$PGO" = 1 ]; then T_PGO=$(median otwatch_pgo); row "otwatch detect ${DETECT_ARGS[*]:5} (PGO)" "$T_PGO"; fi
row "suricata --runmode single" "$T_SURI"
awk -v w="$T_WALK" -v o="$T_OTW" -v s="$T_SURI" 'BEGIN {
    printf "\notwatch/suricata throughput ratio: %.2f; otwatch/walk: %.3f; suricata/walk: %.3f\n", s / o, w / o, w / s }'
if [ "$THREADS2" = 1 ]; then
    awk -v o="$T_OTW" -v o2="$T_OTW2" -v p="$T_PIPE" 'BEGIN {
        b = (p > o - p) ? p : o - p
        printf "otwatch --threads 2 / --threads 1 throughput: %.2f (this split gives at most %.2f: the worker runs the pipeline, %.3f s, the calling thread the rest, %.3f s)\n", o / o2, o / b, p, o - p }'
    awk -v o="$T_OTW" -v h="$(median halves)" -v a="$(median half0)" -v b="$(median half1)" 'BEGIN {
        printf "two halves by device, two processes at once: %.3f s, %.2f times one thread (each alone: %.3f s and %.3f s; evenly balanced: %.2f)\n", h, o / h, a, b, 2 * o / (a + b) }'
fi
if [ "$PGO" = 1 ]; then
    awk -v w="$T_WALK" -v o="$T_PGO" -v s="$T_SURI" 'BEGIN {
        printf "PGO build: otwatch/suricata throughput ratio: %.2f; otwatch/walk: %.3f\n", s / o, w / o }'
fi
