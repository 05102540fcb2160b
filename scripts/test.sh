#!/usr/bin/env bash
# Set up .venv (if needed) and run the whole test suite: unit tests through a real
# IPython shell, real Jupyter kernels, nbval on the notebooks, multi-process stress,
# property-based tests, and the package's doctests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
# Doctests write through the default store: keep them out of the repository.
NBFLOW_DIR="$(mktemp -d)/cache"
export NBFLOW_DIR
exec "$VENV/bin/python" -m pytest --doctest-modules nbflow tests "$@"
