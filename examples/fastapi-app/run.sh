#!/usr/bin/env bash
# Makes .venv (once), installs the requirements and the repository's Python client,
# and serves the app with uvicorn on $PORT (default 8000).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
.venv/bin/pip install -q -e ../../clients/python
exec .venv/bin/uvicorn app:app --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
