#!/usr/bin/env bash
# The Python client's tests, against the real server binary (SWITCHBOARD_BIN, else
# target/debug/switchboard or target/release/switchboard of this repository).
# Creates clients/python/.venv on the first run and installs the package with its
# test extras (again only when pyproject.toml changes). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    # Debian's python3 without python3-venv has no ensurepip: make the venv without
    # pip and install into it with the system's pip instead
    "$PY" -m venv .venv 2>/dev/null || { rm -rf .venv; "$PY" -m venv --without-pip .venv; }
fi
pip_install() {
    if [ -x .venv/bin/pip ]; then .venv/bin/pip "$@"; else "$PY" -m pip --python .venv/bin/python "$@"; fi
}
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    pip_install install --quiet --disable-pip-version-check -e '.[test]'
    touch "$stamp"
fi

# the whole suite takes well under a minute; the bound only stops a hang
exec timeout --kill-after=10 "${SWITCHBOARD_TEST_TIMEOUT:-240}" .venv/bin/python -m pytest -p no:cacheprovider "$@"
