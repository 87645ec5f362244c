#!/usr/bin/env bash
# Set up a development environment: a venv with netcore (editable), its test tools and the test driver package.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test]'
if [ -d tests/plugins/netcore-dummy-driver ]; then
    .venv/bin/pip install -q -e tests/plugins/netcore-dummy-driver
fi
