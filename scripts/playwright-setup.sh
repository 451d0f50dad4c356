#!/bin/sh
# Install what tests/widgets/test_jupyterlab.py needs, without downloading a browser build:
# Debian's chromium (/usr/bin/chromium) from apt and the Python `playwright` package from PyPI.
# The pip wheel ships playwright's node driver; we never run `playwright install`, the test
# launches /usr/bin/chromium through executable_path.
set -eu

PYTHON="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi

if [ ! -x /usr/bin/chromium ]; then
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
fi

if ! "$PYTHON" -c "import playwright" 2>/dev/null; then
    "$PYTHON" -m pip install playwright
fi
# plotly >= 6 draws go.FigureWidget through anywidget (its JupyterLab extension comes with it)
if ! "$PYTHON" -c "import anywidget" 2>/dev/null; then
    "$PYTHON" -m pip install anywidget
fi

/usr/bin/chromium --version
"$PYTHON" -c "import playwright, importlib.metadata as m; print('playwright', m.version('playwright'))"
