"""Shared fixtures: a real instance, started once per module, in threads or processes."""

from __future__ import annotations

import os
import subprocess
import sys
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
