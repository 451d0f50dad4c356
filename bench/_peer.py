"""Side by side with the real Flux: find it, run the same work in both, alternate, summarise.

Every benchmark in bench/ measures its peer in the same run (never a figure from another
day). The peer is the real flux-core (and flux-sched) that ``../shared/vendor/build-flux.sh``
installs under ``FLUX_PREFIX`` (default /opt/flux). Without it a benchmark says the peer is
absent and prints fluxnb's figures alone.

    from _peer import Peer, alternate, show
    peer = Peer.find()                      # None when real Flux is not built
    a, b = alternate(lambda: fluxnb_run(), lambda: peer_run(), repeat=3)   # A B A B A B
    print(show("put+commit/s", a, b, higher_is_better=True))

Workloads that both systems run the same way (a shell command line, or a Python script
using ``import flux``) go through :func:`fluxnb_start` and :meth:`Peer.start`, which run
``flux start --test-size=N CMD`` with each system and return the command's stdout.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_busy() -> float:
    """The machine's busy CPU seconds so far: user, nice, system, irq and softirq time of
    every core (``/proc/stat``)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of process ``pid``, by thread id."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[tid] = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    return out


def fluxnb_env() -> dict[str, str]:
    """Environment for a fluxnb subprocess that imports this checkout's fluxnb."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for k in [k for k in env if k.startswith("FLUX_")]:
        del env[k]
    return env


def fluxnb_start(size: int, argv: Sequence[str], *, processes: bool = False,
                 timeout: float = 600, extra: Sequence[str] = ()) -> str:
    """``fluxnb start --test-size=SIZE ARGV`` of this checkout; its stdout (raises on failure)."""
    cmd = [sys.executable, "-m", "fluxnb.cli.main", "start", f"--test-size={size}", *extra]
    if processes:
        cmd.append("--processes")
    return _run([*cmd, *argv], fluxnb_env(), timeout)


def _run(cmd: Sequence[str], env: dict[str, str], timeout: float) -> str:
    p = subprocess.run(list(cmd), env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])}... exited {p.returncode}: {p.stderr[-2000:]}")
    return p.stdout


@dataclass
class Peer:
    """The real Flux installed under ``prefix``."""

    prefix: Path

    @classmethod
    def find(cls) -> "Peer | None":
        prefix = Path(os.environ.get("FLUX_PREFIX", "/opt/flux"))
        return cls(prefix) if (prefix / "bin" / "flux").exists() else None

    @property
    def flux(self) -> str:
        return str(self.prefix / "bin" / "flux")

    def tool(self, name: str) -> str | None:
        """A flux-sched/flux-core program under the prefix (e.g. ``resource-query``)."""
        for sub in ("bin", "libexec/flux/cmd", "libexec/flux-sched"):
            p = self.prefix / sub / name
            if p.exists():
                return str(p)
        return shutil.which(name, path=str(self.prefix / "bin"))

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("FLUX_") and k != "PYTHONPATH"}
        env["PATH"] = f"{self.prefix / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def start(self, size: int, argv: Sequence[str], *, timeout: float = 600) -> str:
        """``flux start --test-size=SIZE ARGV`` with the real flux-core; its stdout."""
        return _run([self.flux, "start", f"--test-size={size}", *argv], self.env(), timeout)

    def python(self) -> list[str]:
        """argv prefix that runs a Python script with flux-core's bindings importable."""
        return [self.flux, "python"]

    def version(self) -> str:
        try:
            out = subprocess.run([self.flux, "version"], capture_output=True, text=True,
                                 env=self.env(), timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        for line in out.splitlines():
            if line.startswith("commands:"):
                return line.split(":", 1)[1].strip()
        return out.strip().splitlines()[0] if out.strip() else "?"


def absent_note() -> str:
    prefix = os.environ.get("FLUX_PREFIX", "/opt/flux")
    return (f"peer: real Flux absent (no {prefix}/bin/flux; build it with "
            f"../shared/vendor/build-flux.sh [--with-sched]); fluxnb's figures alone")


def alternate(a: Callable[[], float], b: Callable[[], float] | None,
              repeat: int = 3) -> tuple[list[float], list[float]]:
    """Run A B A B ... ``repeat`` times each (B omitted when None); the two lists of results."""
    ra: list[float] = []
    rb: list[float] = []
    for _ in range(repeat):
        ra.append(a())
        if b is not None:
            rb.append(b())
    return ra, rb


def fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 0.1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def spread(vals: Sequence[float]) -> str:
    return f"{fmt(statistics.median(vals))} [{fmt(min(vals))}-{fmt(max(vals))}]"


def ratio(a: Sequence[float], b: Sequence[float], higher_is_better: bool) -> float:
    """How many times better fluxnb (a) is than the peer (b): > 1 means fluxnb leads."""
    ma, mb = statistics.median(a), statistics.median(b)
    if higher_is_better:
        return ma / mb if mb else float("inf")
    return mb / ma if ma else float("inf")


def show(what: str, a: Sequence[float], b: Sequence[float], *, higher_is_better: bool,
         unit: str = "", target: float | None = None, width: int = 44) -> str:
    """One line: fluxnb's median [range], the peer's, and the ratio (>1: fluxnb ahead)."""
    u = f" {unit}" if unit else ""
    line = f"{what:<{width}} fluxnb {spread(a)}{u}"
    if b:
        r = ratio(a, b, higher_is_better)
        line += f"   flux {spread(b)}{u}   ratio {r:.2f}x"
        if target is not None:
            line += f" (target >= {target:g}x: {'met' if r >= target else 'NOT met'})"
    else:
        line += "   (peer absent)"
    return line


def header(peer: Peer | None, what: str) -> str:
    lines = [f"# {what}", f"# load average at start: {load_average()}"]
    if peer is None:
        lines.append("# " + absent_note())
    else:
        lines.append(f"# peer: flux-core {peer.version()} under {peer.prefix}, run alternately "
                     f"(fluxnb, flux, fluxnb, ...); medians [min-max]; ratio > 1: fluxnb ahead")
    return "\n".join(lines)


def tmpfile(text: str, suffix: str = ".py") -> str:
    fd, path = tempfile.mkstemp(prefix="fluxnb-bench-", suffix=suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def no_counterpart(what: str, instead: str) -> str:
    """Header of a benchmark whose subject the real Flux does not have (DYAD, tracing...)."""
    return "\n".join([f"# {what}", f"# load average at start: {load_average()}",
                      f"# peer: flux-core has no counterpart; compared with {instead}, "
                      f"measured in the same run"])
