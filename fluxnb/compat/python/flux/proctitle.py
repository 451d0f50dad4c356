"""``flux.proctitle``: ``set_proctitle(name)``, the process name shown by ps and top
(``/proc/self/comm``), set as the Flux broker sets its own: ``prctl(PR_SET_NAME)``
through libc on Linux (the kernel keeps 15 characters), nothing elsewhere. Failures
are ignored: a process name is cosmetic."""

import ctypes
import ctypes.util
import platform

PR_SET_NAME = 15


def set_proctitle(name):
    """Name this process ``name`` (Linux only; errors are ignored)."""
    if platform.system() != "Linux":
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0)
    except Exception:  # noqa: BLE001 - cosmetic: never fail the caller
        pass


__all__ = ["set_proctitle"]
