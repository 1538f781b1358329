#!/usr/bin/env bash
# make bench: performance figures as ratios measured in one run, with the
# machine noted (build/bench measures the encode and prefill in one process).
# The model has LLaVA-1.5-7B's widths, made by build/tiny-model: the CLIP
# ViT-L/14-336 tower, the projector and 4 decoder layers of Vicuna-7B width,
# in f32 and bf16 (about 8 GB on disk under build/bench-data, made once).
set -euo pipefail
BUILD=${BUILD:-build}
SV=$BUILD/shortv
DIR=$BUILD/bench-data
IMG=tests/fixtures/golden/images/chelsea.png
THREADS=${THREADS:-$(nproc)}
SHAPE="--text 4096,4,32,32,11008 --vision 1024,24,16,4096"
mkdir -p "$DIR"

flags=$(grep -m1 '^flags' /proc/cpuinfo)
isa=$(for f in avx2 fma avx512f; do [[ " $flags " == *" $f "* ]] && printf '%s ' "$f"; done; true)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), ${isa:-no AVX2}; $THREADS threads; $(date -u +%F)"
for dtype in f32 bf16; do
  if [ ! -f "$DIR/llava7b-$dtype/config.json" ]; then
    echo "bench: generating $DIR/llava7b-$dtype (once)"
    "$BUILD/tiny-model" --out "$DIR/llava7b-$dtype" --dtype $dtype $SHAPE >/dev/null
  fi
done

"$BUILD/bench" "$THREADS" "$IMG" "$DIR/llava7b-f32" "$DIR/llava7b-bf16"

# calibration throughput (bf16), and the restarts from cached layer inputs
# against the paper's full forwards
for i in 1 2; do
  echo "{\"id\": \"b$i\", \"image\": \"$(realpath $IMG)\", \"question\": \"Question number $i?\"}"
done > "$DIR/manifest.jsonl"
sweep() {
  local t0 t1
  rm -f "$DIR/lc$1.h5"
  t0=$(date +%s.%N)
  "$SV" calibrate -m "$DIR/llava7b-bf16" --data "$DIR/manifest.jsonl" -o "$DIR/lc$1.h5" \
    -t "$THREADS" $2 2>/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}
fast=$(sweep fast "")
naive=$(sweep naive --naive)
awk -v f="$fast" -v n="$naive" 'BEGIN {
  printf "calibrate (bf16, both groups, 2 samples): %.0f samples/hour; naive/fast time %.2fx\n",
         2 * 3600 / f, n / f }'
