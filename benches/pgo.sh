#!/usr/bin/env bash
# Profile-guided build of otwatch: the `dist` profile, instrumented, trained on captures that are
# not the benchmark's, then rebuilt with the merged profile. Prints the binary's path.
#
#   benches/pgo.sh                  # -> target/pgo/x86_64-unknown-linux-gnu/dist/otwatch
#
# The training set is deliberately other traffic than the side-by-side capture (seed 1): a plant of
# seed 11 with loss, reordering and 15 % OPC UA, a baseline learnt on seed 12, detection with and
# without that baseline (one and two threads), an alert flood (a baseline too small for the plant),
# inspect and stats, and the project's own evaluation captures. PGO changes only how the code is
# laid out and inlined, never what it computes: the side-by-side script checks that the PGO build's
# alerts are byte-identical to the plain build's.
#
# Needs llvm-profdata matching rustc's LLVM: the rustup component `llvm-tools` (installed here if
# missing). Environment: WORK (/tmp/otwatch-pgo), PACKETS (300000).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/otwatch-pgo}
PACKETS=${PACKETS:-300000}
HOST=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA=$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata
if [ ! -x "$PROFDATA" ]; then
    rustup component add llvm-tools >&2 || { echo "pgo: llvm-profdata not available (rustup component llvm-tools)" >&2; exit 2; }
fi
[ -x "$PROFDATA" ] || { echo "pgo: $PROFDATA missing after installing llvm-tools" >&2; exit 2; }

# Separate target dirs: RUSTFLAGS differ, and the plain build's cache stays untouched. `--target`
# keeps RUSTFLAGS away from build scripts and proc macros.
GEN_DIR=$ROOT/target/pgo-gen
USE_DIR=$ROOT/target/pgo
RAW=$WORK/raw
mkdir -p "$WORK"
rm -rf "$RAW"
cd "$ROOT"

echo "pgo: instrumented build" >&2
RUSTFLAGS="-Cprofile-generate=$RAW" cargo build --locked --quiet --profile dist --target "$HOST" \
    --target-dir "$GEN_DIR" --bin otwatch --bin otwatch-gen
BIN=$GEN_DIR/$HOST/dist/otwatch
GEN=$GEN_DIR/$HOST/dist/otwatch-gen

echo "pgo: training" >&2
TRAIN=$WORK/train-s11.pcap
LEARN=$WORK/learn-s12.pcap
SMALL=$WORK/learn-s12-small.pcap
[ -s "$TRAIN" ] || "$GEN" "$TRAIN" --seed 11 --packets "$PACKETS" --opcua-share 0.15 --loss 0.001 --reorder 0.001 >/dev/null
[ -s "$LEARN" ] || "$GEN" "$LEARN" --seed 12 --packets "$PACKETS" --opcua-share 0.05 --loss 0 --reorder 0.0002 >/dev/null
[ -s "$SMALL" ] || "$GEN" "$SMALL" --seed 12 --packets $((PACKETS / 10)) --opcua-share 0.05 --loss 0 --reorder 0.0002 >/dev/null
"$BIN" learn -o "$WORK/base.json" "$LEARN" >/dev/null 2>&1
"$BIN" learn -o "$WORK/base-small.json" "$SMALL" >/dev/null 2>&1
for t in 1 2; do
    "$BIN" detect --threads $t --baseline "$WORK/base.json" --output /dev/null "$TRAIN" >/dev/null 2>&1
    "$BIN" detect --threads $t --baseline "$WORK/base.json" --output /dev/null "$LEARN" >/dev/null 2>&1
done
"$BIN" detect --baseline "$WORK/base-small.json" --output /dev/null "$TRAIN" >/dev/null 2>&1
"$BIN" detect --output /dev/null "$TRAIN" >/dev/null 2>&1
"$BIN" inspect --format json "$TRAIN" >/dev/null 2>&1
"$BIN" stats "$TRAIN" >/dev/null 2>&1
if [ -d pcaps/eval ]; then
    "$BIN" learn -o "$WORK/eval-base.json" pcaps/eval/train.pcap >/dev/null 2>&1 || true
    "$BIN" detect --baseline "$WORK/eval-base.json" --output /dev/null pcaps/eval/*.pcap* >/dev/null 2>&1 || true
fi

"$PROFDATA" merge -o "$WORK/merged.profdata" "$RAW"

echo "pgo: optimised build" >&2
RUSTFLAGS="-Cprofile-use=$WORK/merged.profdata" cargo build --locked --quiet --profile dist --target "$HOST" \
    --target-dir "$USE_DIR" --bin otwatch
echo "$USE_DIR/$HOST/dist/otwatch"
