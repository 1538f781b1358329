#!/usr/bin/env bash
# make fuzz: every input parser under libFuzzer (scripts/fuzz.c, built with ASan +
# UBSan into build-fuzz/) for FUZZ_SECONDS each (default 60), starting from seed
# inputs taken from the repository. A crash stops with libFuzzer's report and the
# input that caused it (build-fuzz/crash-*; an input that takes over 10 s counts too);
# the corpora grow in build-fuzz/corpus/.
#   FUZZ_SECONDS=600 TARGETS="safetensors image" make fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ=build-fuzz/fuzz
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${TARGETS:-"safetensors torchbin pickle config tokenizer spm encode image manifest freeze npy study"}
CORPUS=build-fuzz/corpus

seed() { # seed TARGET FILE...: copies the files that exist into the target's corpus
  local t=$1; shift
  mkdir -p "$CORPUS/$t"
  # named after their paths: many are called config.json
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$CORPUS/$t/$(printf '%s' "$f" | tr / _)" || true; done
}
seed_text() { # seed_text TARGET NAME TEXT
  mkdir -p "$CORPUS/$1" && printf '%s' "$3" > "$CORPUS/$1/$2"
}

# a small two-tensor safetensors file: 8-byte little-endian header length, JSON, data
header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}}'
mkdir -p "$CORPUS/safetensors"
{
  n=${#header}
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) $((n >> 24 & 255)))"
  printf '%s' "$header"
  printf '\x00\x00\x80\x3f\x00\x00\x00\x40\x80\x3f\x00\x40'
} > "$CORPUS/safetensors/two.safetensors"
seed torchbin tests/fixtures/original/clip-tiny-a/pytorch_model.bin
mkdir -p "$CORPUS/pickle"
unzip -p tests/fixtures/original/clip-tiny-a/pytorch_model.bin pytorch_model/data.pkl \
  > "$CORPUS/pickle/clip.pkl" 2>/dev/null || true
seed spm ../shared/golden/sentencepiece/tokenizer.model
seed config models/synth-llava/config.json models/configs/*/config.json \
  ../shared/golden/models/tiny-next/config.json tests/fixtures/original/*/config.json
seed_text config duplicate-key '{"text_config": {"rope_theta": 10000.0, "rope_theta": 0}}'
seed_text config undefined-maths '{"text_config": {"rms_norm_eps": -1, "num_hidden_layers": 1e10}}'
seed tokenizer models/synth-llava/tokenizer.json
seed_text encode plain "What color is the triangle?"
seed_text encode special "<s>text</s> more <image>\n  tabs\tand ümlauts"
seed image tests/fixtures/golden/images/tiny_37x23.png datasets/synth-vqa/images/calib/000000.png
seed manifest datasets/synth-vqa/calib.jsonl
seed_text manifest strings.jsonl '{"id": "a\u0000b", "image": "a.png", "question": "Q\\"\u0000?"}'
seed_text manifest llava.json '[{"id": "x", "image": "a.png", "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "A"}]}]'
seed_text freeze freeze.json '{"format": "shortv-freeze", "version": 1, "model": {"path": "m", "config_hash": "0123456789abcdef", "n_layers": 4}, "group": "visual", "frozen_layers": [3, 2]}'
seed_text freeze list "3,1,2"
seed npy tests/fixtures/golden/lc_golden.npy
seed study reports/demo/study/study.json build/tmp/study/out/study.json

echo "fuzz: $SECONDS_EACH s per target: $TARGETS ($(nproc) cores)"
for t in $TARGETS; do
  mkdir -p "$CORPUS/$t"
  echo "== $t"
  log=build-fuzz/fuzz-$t.log
  rc=0
  SV_FUZZ_TARGET=$t "$FUZZ" "$CORPUS/$t" -max_total_time="$SECONDS_EACH" -max_len=65536 \
    -timeout=10 -artifact_prefix=build-fuzz/crash-$t- -print_final_stats=1 >"$log" 2>&1 || rc=$?
  grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" | tr '\n' ' ' || true
  echo
  if [ "$rc" -ne 0 ]; then
    tail -30 "$log" >&2
    echo "fuzz: $t failed (exit $rc); the input is in build-fuzz/crash-$t-*, the log in $log" >&2
    exit 1
  fi
done
echo "fuzz: no crash"
