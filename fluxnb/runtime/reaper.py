"""No orphans: end what an instance left running, and remove its run directory.

Every process an instance starts (tasks, ``flux exec`` commands, the initial
program) carries ``FLUXNB_INSTANCE=<rundir>`` in its environment, and so do their
children; each broker process has its run directory on its command line. So what
is left of an instance can be found by scanning ``/proc``. (Not by ``FLUX_URI``:
a client outside the instance, or a user's shell, may hold that too.)
:func:`reap` does that; the instance calls it when it stops, and so does a small
watchdog process (this file run as a script, stdlib only, no ``fluxnb`` import)
that waits on a pipe whose write end only the hosting process holds: when that
process ends, however it ends (``kill -9`` too), the pipe reads end-of-file and
the watchdog reaps the instance. An instance that stops normally writes one byte
first: the watchdog then just exits.

Run as ``python -S reaper.py FD RUNDIR [keep]``: wait for end of file on FD, then
reap RUNDIR (``keep``: leave the directory itself, it was not ours to create).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys


#: environment variable naming the run directory of the instance a process belongs to
MARK = "FLUXNB_INSTANCE"


def instance_pids(rundir: str, uris: list[str] | None = None) -> list[int]:
    """Processes of the instance whose run directory is ``rundir`` (not this one);
    with ``uris``, only those started by the brokers at these local URIs."""
    uri = f"\0{MARK}={rundir}\0".encode()
    only = [f"\0FLUX_URI={u}\0".encode() for u in uris] if uris is not None else None
    mark = rundir.encode()
    me = os.getpid()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = b"\0" + f.read()
            if uri in env:
                if only is None or any(u in env for u in only):
                    pids.append(int(name))
                continue
            if only is not None:
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:  # gone, or another user's
            continue
        if b"fluxnb.runtime.brokerd" in cmd and mark in cmd:
            pids.append(int(name))
    return pids


def reap(rundir: str, remove: bool = True, uris: list[str] | None = None) -> int:
    """SIGKILL every process of the instance at ``rundir``; remove the directory.

    With ``uris``, only the processes started by those brokers, and the directory
    stays. Returns how many processes were signalled.
    """
    n = 0
    for _ in range(3):  # a fork racing the scan is caught by the next round
        pids = instance_pids(rundir, uris)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                n += 1
            except (ProcessLookupError, PermissionError):
                pass
    if remove and uris is None:
        shutil.rmtree(rundir, ignore_errors=True)
    return n


def watchdog_command(fd: int, rundir: str, remove: bool) -> list[str]:
    """The command line of a watchdog for the instance at ``rundir``."""
    cmd = [sys.executable, "-S", os.path.abspath(__file__), str(fd), rundir]
    return cmd if remove else cmd + ["keep"]


def _watch(argv: list[str]) -> int:
    fd, rundir = int(argv[0]), argv[1]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while True:
        try:
            data = os.read(fd, 64)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if data:  # the instance stopped and cleaned up itself
            return 0
        break
    reap(rundir, remove=len(argv) < 3)
    return 0


if __name__ == "__main__":
    sys.exit(_watch(sys.argv[1:]))
