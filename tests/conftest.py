"""Shared fixtures: a real instance, started once per module, in threads or processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "conformance"

os.environ.setdefault("FLUXNB_QUIET", "1")


@pytest.fixture(scope="module", params=["threads", "processes"])
def any_instance(request):
    """A 4-broker instance with fan-out 2, once with threads and once with a process per broker."""
    from fluxnb import Instance
    inst = Instance(test_size=4, fanout=2, processes=request.param == "processes")
    inst.start()
    yield inst
    inst.stop()


@pytest.fixture(scope="module")
def instance():
    from fluxnb import Instance
    with Instance(test_size=4) as inst:
        yield inst


@pytest.fixture
def h(instance):
    from fluxnb import Flux
    with Flux(instance.uri) as handle:
        yield handle


def fluxnb_cmd(*args: str, env=None, timeout: float = 60, input: str | None = None,
               cwd=None) -> subprocess.CompletedProcess:
    """Run the fluxnb CLI as a user would (a new process)."""
    return subprocess.run([sys.executable, "-m", "fluxnb.cli.main", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, input=input, cwd=cwd)


def alive(pid: int) -> bool:
    """True if pid runs (a zombie waiting for its reaper does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    """Return ``predicate()`` once it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


QM, RES = "sched-fluxion-qmanager", "sched-fluxion-resource"


def reload_sched(h, resource_args=(), qmanager_args=()):
    """Reload the Fluxion modules on rank 0 with these arguments."""
    h.rpc("module.remove", {"name": QM}, nodeid=0).get()
    h.rpc("module.remove", {"name": RES}, nodeid=0).get()
    h.rpc("module.load", {"name": RES, "args": list(resource_args)}, nodeid=0).get()
    h.rpc("module.load", {"name": QM, "args": list(qmanager_args)}, nodeid=0).get()
