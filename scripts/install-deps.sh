#!/usr/bin/env bash
# Installs the packages shortv builds and tests with (run as root or with sudo), by
# names that Debian (12, CI) and Ubuntu (22.04, 24.04) both have: libjpeg-dev, not
# Debian's libjpeg62-turbo-dev, which it depends on there.
set -euo pipefail
PKGS=(build-essential pkg-config libopenblas-dev libhdf5-dev libcjson-dev libpng-dev
      libjpeg-dev libcmocka-dev gnuplot-nox python3-numpy python3-h5py
      openmpi-bin libopenmpi-dev)
# Optional: --train adds what retraining models/synth-llava needs (scripts/train_synth.py),
# --fuzz what `make fuzz` needs (clang and its libFuzzer runtime).
for opt in "$@"; do
  case "$opt" in
    --train) PKGS+=(python3-torch) ;;
    --fuzz) PKGS+=(clang libclang-rt-14-dev) ;;
    *) echo "install-deps.sh: unknown option $opt (--train, --fuzz)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "shortv needs these packages; as root run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  SUDO=sudo
fi
echo "installing: ${missing[*]}" >&2
$SUDO apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >&2
