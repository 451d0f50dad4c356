#!/usr/bin/env bash
# Install fluxnb with its test dependencies (used by the README and .ci/run):
# the package and its test extras, then Debian's chromium and the playwright
# package for the JupyterLab end-to-end test (no browser download), and real flux-core
# from ../shared/vendor for tests/realflux (about 6 minutes the first time; build-flux.sh
# keeps a stamp in the prefix, so a second run returns at once).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
sh scripts/playwright-setup.sh
# a second, unprivileged uid: tests/runtime/test_reliability.py checks that an
# instance refuses a client of another user (needs root to create, and to setuid)
if [ "$(id -u)" = 0 ]; then
    id fluxnb-guest >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin fluxnb-guest
fi
if [ -f ../shared/vendor/build-flux.sh ]; then
  bash ../shared/vendor/build-flux.sh ${FLUX_PREFIX:+--prefix "$FLUX_PREFIX"}
else
  echo "test-setup: ../shared/vendor/build-flux.sh not found: tests/realflux will fail (no real Flux)" >&2
fi
