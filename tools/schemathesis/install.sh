#!/usr/bin/env bash
# Installs schemathesis (pinned, with every dependency, in requirements.txt) into tools/schemathesis/.venv, from PyPI.
# Idempotent: a venv that already has the pinned version is left as it is.
#   bash tools/schemathesis/install.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV="$HERE/.venv"
WANT=$(awk -F'==' '$1 == "schemathesis" { print $2 }' "$HERE/requirements.txt")
if [ -x "$VENV/bin/schemathesis" ] && [ "$("$VENV/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" = "$WANT" ]; then
  echo "schemathesis $WANT already in $VENV"
  exit 0
fi
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv --clear "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$HERE/requirements.txt"
echo "schemathesis $("$VENV/bin/schemathesis" --version | awk '{print $NF}') installed in $VENV"
