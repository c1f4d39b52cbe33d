# Sourced by scripts/test and scripts/demo: make .venv with Python 3.11+ and a pip
# that installs PEP 735 dependency groups (--group dev, pip >= 25.1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi

# pip's and the build backend's chatter is shown only when an install fails.
pip_install() {
    local log
    log=$(mktemp)
    if ! .venv/bin/python -m pip install --disable-pip-version-check "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "pip install $* failed" >&2
        return 1
    fi
    rm -f "$log"
}

pip_install --upgrade "pip>=25.1"
