#!/usr/bin/env bash
# Creates examples/python-worker/.venv from PyPI with every package of requirements.txt, pinned, without dependency
# resolution (see requirements.txt for why). Idempotent: a venv whose recorded requirements match is left as it is.
#   bash examples/python-worker/install.sh        # PYTHON=python3.11 to choose the interpreter
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV="$HERE/.venv"
STAMP="$VENV/.requirements.sha256"
WANT=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ]; then
  echo "python worker venv up to date in $VENV"
  exit 0
fi
PYTHON=${PYTHON:-python3}
T0=$(date +%s.%N)
"$PYTHON" -m venv --clear "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input --no-cache-dir --no-deps -r "$HERE/requirements.txt"
# the interpreter can load what the worker imports (torch's CUDA libraries among them)
"$VENV/bin/python" -c 'import torch, monai, pika, jsonschema, highdicom, dicomweb_client, onnx, skimage, nibabel'
echo "$WANT" >"$STAMP"
echo "python worker venv installed in $VENV in $(awk "BEGIN{printf \"%.0f\", $(date +%s.%N)-$T0}") s ($(du -sh "$VENV" | cut -f1))"
