# Sourced by scripts/test and scripts/demo: make .venv with Python 3.11+ and install the package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# pip >= 25.1 installs PEP 735 dependency groups (--group dev).
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
