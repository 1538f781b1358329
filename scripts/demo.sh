#!/usr/bin/env bash
# The demo: ShortV on the bundled model, from calibration to the freeze study.
# `make demo` runs it after installing the dependencies, building build/shortv
# and making the synthetic data (`make data`). On the calibration split it
# measures the layer contributions of both token groups, plots them and writes
# freeze configs; on the evaluation split it runs the freeze study (LC-ordered,
# reverse and random layer sets at each N, the dense model as reference); then
# it writes OUT/index.html and prints where it is and what the study found.
#
# Settings, from the environment (the defaults are the demo's):
#   BUILD        build folder holding shortv                   build
#   DATA         calib.jsonl and eval.jsonl                    datasets/synth-vqa
#   MODEL        the checkpoint                                models/synth-llava
#   OUT          output folder (git-ignored)                   reports/demo
#   COUNTS       numbers of layers N the study freezes         3,6,9
#   RANDOM_SETS  random layer sets per N                       8
#   LIMIT        evaluation samples, 0 for the whole split     0
#   CALIB_LIMIT  calibration samples, 0 for the whole split    0
#   THREADS      threads per command                           1
# One thread: at this model's size (hidden 64, ~110 positions) a second one does
# not pay (study of 100 samples x 16 layer sets: 18.8 s with 1, 20.8 s with 2).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
MODEL=${MODEL:-models/synth-llava}
OUT=${OUT:-reports/demo}
COUNTS=${COUNTS:-3,6,9}
RANDOM_SETS=${RANDOM_SETS:-8}
LIMIT=${LIMIT:-0}
CALIB_LIMIT=${CALIB_LIMIT:-0}
THREADS=${THREADS:-1}
SHORTV=$BUILD/shortv
DATA=${DATA:-datasets/synth-vqa}

for f in "$SHORTV" "$MODEL/config.json" "$DATA/calib.jsonl" "$DATA/eval.jsonl"; do
  [ -e "$f" ] || { echo "demo: $f is missing (make demo builds and generates it)" >&2; exit 1; }
done

limit() { [ "$1" -gt 0 ] && echo "--limit $1"; true; }
start=$(date +%s)
step_start=$start step_title=""
# step TITLE: prints the time the previous step took, then announces TITLE ("": none)
step() {
  local now; now=$(date +%s)
  [ -z "$step_title" ] || echo "   $step_title took $(( now - step_start )) s" >&2
  step_title=${1%%:*} step_start=$now
  [ -z "$1" ] || echo "== $*" >&2
}

mkdir -p "$OUT"
step "calibrate: LC of every layer for visual and text tokens on $DATA/calib.jsonl"
"$SHORTV" calibrate -m "$MODEL" --data "$DATA/calib.jsonl" $(limit "$CALIB_LIMIT") \
  --groups visual,text -t "$THREADS" -o "$OUT/lc.h5" --force

step "plot: mean LC, rankings, heatmaps, bottom-N stability"
"$SHORTV" plot "$OUT/lc.h5" -o "$OUT"

step "freeze: the N lowest-LC layers for N in $COUNTS"
for n in ${COUNTS//,/ }; do
  "$SHORTV" freeze "$OUT/lc.h5" -n "$n" -m "$MODEL" -o "$OUT/freeze-$n.json"
done

step "study: LC-ordered, reverse and $RANDOM_SETS random layer sets per N on $DATA/eval.jsonl"
"$SHORTV" study -m "$MODEL" --lc "$OUT/lc.h5" --data "$DATA/eval.jsonl" $(limit "$LIMIT") \
  --counts "$COUNTS" --random-sets "$RANDOM_SETS" --seed 0 -n 4 -t "$THREADS" -o "$OUT/study"

step "report"
"$SHORTV" report "$OUT/lc.h5" --freeze "$OUT/freeze-${COUNTS##*,}.json" \
  --study "$OUT/study/study.json" -o "$OUT"

step ""
echo "demo: done in $(( $(date +%s) - start )) s; open $OUT/index.html" >&2
