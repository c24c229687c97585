#!/usr/bin/env bash
# Measures the Python worker's venv install from PyPI, lean (requirements.txt with --no-deps, as install.sh does)
# against pip resolving torch's own dependencies (the same pins without the nvidia-* lines: the whole CUDA stack),
# alternating, RUNS times each (default 2), in fresh venvs under a temporary folder, without pip's cache. Prints each
# run with the load average, then one JSON line. Downloads about 2.5 + 3 GB per pair of runs.
#   bash examples/python-worker/measure-install.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-2}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
grep -v '^nvidia-' "$HERE/requirements.txt" >"$WORK/full.txt"
load() { cut -d' ' -f1 /proc/loadavg; }
measure() { # name, pip arguments...
  local name=$1 t0 t1 l0
  shift
  rm -rf "$WORK/venv"
  l0=$(load)
  t0=$(date +%s.%N)
  "$PYTHON" -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --no-input --no-cache-dir "$@"
  t1=$(date +%s.%N)
  local seconds size
  seconds=$(awk "BEGIN{printf \"%.1f\", $t1-$t0}")
  size=$(du -sm "$WORK/venv" | cut -f1)
  echo "$name: $seconds s, $size MB, load $l0 -> $(load)" >&2
  echo "{\"install\":\"$name\",\"seconds\":$seconds,\"megabytes\":$size,\"loadStart\":$l0,\"loadEnd\":$(load)}"
}
results=()
for ((run = 1; run <= RUNS; run++)); do
  results+=("$(measure lean --no-deps -r "$HERE/requirements.txt")")
  results+=("$(measure full -r "$WORK/full.txt")")
done
(IFS=,; echo "{\"runs\":[${results[*]}]}")
