#!/usr/bin/env bash
# Set up .venv (if needed), then run notebooks/quickstart.ipynb headless, restart the
# kernel, run it again, and print per step the first-run time against the resumed time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
exec "$VENV/bin/python" scripts/demo.py "$@"
