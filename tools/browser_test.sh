#!/usr/bin/env bash
# Run every course notebook in JupyterLab in headless Chromium (tests/browser/test_jupyterlab.py).
# Needs: Debian's chromium (apt-get install -y chromium) and `pip install playwright` (no `playwright install`).
# Screenshots, browser console and the JupyterLab log land in ci-artifacts/browser/.
# Extra arguments go to pytest, e.g. tools/browser_test.sh -k 01_forward_process
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && [ -z "${VIRTUAL_ENV:-}" ] && PY=.venv/bin/python
exec "$PY" -m pytest tests/browser -v -s -p no:cacheprovider "$@"
