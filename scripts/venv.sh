# Sourced by demo.sh and test.sh: create $NBFLOW_VENV (default .venv) if needed and
# install nbflow with its test extra into it; leaves its path in $VENV.
VENV=${NBFLOW_VENV:-.venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -e '.[test]'
