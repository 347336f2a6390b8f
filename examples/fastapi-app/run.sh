#!/usr/bin/env bash
# Makes .venv (once), installs the requirements and the repository's Python client
# (again only when requirements.txt or the client's pyproject.toml change), and serves
# the app with uvicorn on $PORT (default 8000). `run.sh --install` only installs.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  # Debian's python3 without python3-venv has no ensurepip: make the venv without pip
  # and install into it with the system's pip instead
  "$PY" -m venv .venv 2>/dev/null || { rm -rf .venv; "$PY" -m venv --without-pip .venv; }
fi
pip_install() {
  if [ -x .venv/bin/pip ]; then .venv/bin/pip "$@"; else "$PY" -m pip --python .venv/bin/python "$@"; fi
}
stamp=".venv/.installed-$(cat requirements.txt ../../clients/python/pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  pip_install install --quiet --disable-pip-version-check -r requirements.txt -e ../../clients/python
  rm -f .venv/.installed-*
  touch "$stamp"
fi

[ "${1:-}" = --install ] && exit 0
exec .venv/bin/python -m uvicorn app:app --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
