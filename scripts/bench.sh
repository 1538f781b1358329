#!/usr/bin/env bash
# make bench: performance figures as ratios measured in one run, with the
# machine noted (the prefill figures come from build/bench, in one process).
# Uses a generated bf16 model of mid size (8 decoder layers, hidden 512, 576
# visual tokens) so that the matrix work dominates.
set -euo pipefail
BUILD=${BUILD:-build}
SV=$BUILD/shortv
DIR=$BUILD/bench-data
MODEL=$DIR/model
IMG=tests/fixtures/golden/images/chelsea.png
THREADS=${THREADS:-$(nproc)}
mkdir -p "$DIR"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $THREADS OpenBLAS threads"
if [ ! -f "$MODEL/config.json" ]; then
  "$BUILD/tiny-model" --out "$MODEL" --dtype bf16 --text 512,8,8,2,1536 --vision 256,6,8,1024 >/dev/null
fi

"$BUILD/bench" "$MODEL" "$IMG" "$THREADS"

# calibration sweep: restarts from cached layer inputs vs the paper's full forwards
for i in 1 2 3 4; do
  echo "{\"id\": \"b$i\", \"image\": \"$(realpath $IMG)\", \"question\": \"Question number $i?\"}"
done > "$DIR/manifest.jsonl"
sweep() {
  local t0 t1
  t0=$(date +%s.%N)
  "$SV" calibrate -m "$MODEL" --data "$DIR/manifest.jsonl" -o "$DIR/lc$1.h5" -t "$THREADS" $2 2>/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}
fast=$(sweep fast "")
naive=$(sweep naive --naive)
awk -v f="$fast" -v n="$naive" \
  'BEGIN { printf "calibrate, 4 samples x 2 groups: naive/fast time ratio %.2fx\n", n / f }'
