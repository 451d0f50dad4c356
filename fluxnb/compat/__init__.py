"""fluxnb.compat: flux-core's ``flux`` Python package, served by fluxnb.

``PATH`` is the directory that holds the top-level ``flux`` package. Processes of an
instance get it on ``PYTHONPATH`` (as they get the ``flux`` CLI shim on ``PATH``), and
the kernel gets it on ``sys.path`` after ``%flux start``, unless a real flux-core
``flux`` package is importable: the real one always wins.
"""

from __future__ import annotations

import os

#: the directory holding fluxnb's top-level ``flux`` package
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python")
