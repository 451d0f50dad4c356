#!/usr/bin/env bash
# Install fluxnb with its test dependencies (used by the README and .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
