"""flux-core's own Python tests of the utility modules of ``import flux``
(hostlist, idset, resource sets, counts and pools, queues, util, uri, trees,
constraint and shape parsers, eventlog formatter, argument parser, CLI plugins), run unmodified from
``../shared/conformance/flux-core-python`` against fluxnb's ``flux`` package.

Each file runs in a fresh ``python3 -m unittest``; the test fails if a
file's passing cases drop below the floor recorded here. These files need no
instance (their ``subflux`` import only sets up paths, with IN_SUBFLUX=1).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT.parent / "shared" / "conformance" / "flux-core-python"
TDIR = SRC / "t" / "python"

#: file -> (cases in the file, cases that must pass).
FLOORS = {
    "t0019-cli-plugin.py": (17, 17),
    "t0020-hostlist.py": (15, 15),
    "t0021-idset.py": (18, 18),
    "t0022-resource-set.py": (60, 60),
    "t0024-util.py": (29, 29),
    "t0025-uri.py": (4, 4),
    "t0026-tree.py": (10, 10),
    "t0027-constraint-parser.py": (5, 5),
    "t0029-fileref.py": (3, 3),
    "t0033-eventlog-formatter.py": (7, 7),
    "t0039-rv1pool.py": (146, 146),
    "t0041-resource-count.py": (93, 93),
    "t0045-job-shape-parser.py": (2, 2),
    "t0047-flux-argument-parser.py": (38, 38),
}

#: files that need an instance of the size their __flux_size() asks for:
#: file -> (size, cases, must pass). Not passing, by name:
#:   t0034 test_002_named: needs a config service (config.load) and named
#:         queues in the job manager, which fluxnb does not have yet.
INSTANCE_FLOORS = {
    "t0034-queuelist.py": (2, 3, 2),
}

pytestmark = pytest.mark.skipif(not TDIR.is_dir(), reason=f"no conformance data at {TDIR}")


def run_file(name: str, env: dict | None = None) -> dict[str, int]:
    env = dict(os.environ if env is None else env, FLUX_SOURCE_DIR=str(SRC), IN_SUBFLUX="1",
               TZ="UTC")
    if not INSTANCE_FLOORS.get(name):
        env.pop("FLUX_URI", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(TDIR), str(TDIR / "tap"), str(ROOT / "fluxnb" / "compat" / "python"), str(ROOT)])
    p = subprocess.run([sys.executable, "-m", "unittest", "-v", name], cwd=TDIR, env=env,
                       capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    ran = re.search(r"^Ran (\d+) tests?", out, re.M)
    counts = {"run": int(ran.group(1)) if ran else 0}
    for key in ("failures", "errors", "skipped"):
        m = re.search(rf"{key}=(\d+)", out.splitlines()[-1] if out else "")
        counts[key] = int(m.group(1)) if m else 0
    counts["pass"] = counts["run"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["output"] = out  # type: ignore[assignment]
    return counts


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_flux_core_file_passes_its_floor(name):
    total, floor = FLOORS[name]
    c = run_file(name)
    print(f"{name}: run {c['run']} pass {c['pass']} fail {c['failures']} "
          f"error {c['errors']} skipped {c['skipped']}")
    assert c["run"] == total, c["output"][-3000:]
    assert c["pass"] >= floor, c["output"][-3000:]


@pytest.mark.parametrize("name", sorted(INSTANCE_FLOORS))
def test_flux_core_file_in_an_instance_passes_its_floor(name):
    from fluxnb import Instance
    size, total, floor = INSTANCE_FLOORS[name]
    with Instance(test_size=size) as inst:
        c = run_file(name, env=inst.environ(0))
    print(f"{name}: run {c['run']} pass {c['pass']} fail {c['failures']} "
          f"error {c['errors']} skipped {c['skipped']}")
    assert c["run"] == total, c["output"][-3000:]
    assert c["pass"] >= floor, c["output"][-3000:]


def test_unknown_names_raise_naming_them():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "fluxnb" / "compat" / "python"), str(ROOT)]))
    code = ("import flux.hostlist as h, flux.idset as i\n"
            "for f in (lambda: h.Nope, lambda: __import__('flux.nosuchmod')):\n"
            "    try: f()\n"
            "    except (AttributeError, ImportError) as e: print(type(e).__name__, e)\n"
            "for f in (lambda: h.Hostlist(42), lambda: i.IDset(1.5), lambda: i.IDset('x')):\n"
            "    try: f()\n"
            "    except (TypeError, ValueError) as e: print(type(e).__name__)\n")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    lines = p.stdout.splitlines()
    assert lines[0].startswith("AttributeError") and "Nope" in lines[0], p.stderr
    assert lines[1].startswith("ModuleNotFoundError") and "flux.nosuchmod" in lines[1]
    assert lines[2:] == ["TypeError", "TypeError", "ValueError"]


def test_resource_list_and_status_inside_an_instance(tmp_path):
    """``flux.resource.resource_list``/``resource_status`` as flux-core's
    tutorials use them, run by a process inside a 2-node instance."""
    from fluxnb import Instance
    code = (
        "from fluxnb.runtime.client import Flux\n"
        "from flux.resource import resource_list, resource_status, ResourceSet\n"
        "h = Flux()\n"
        "rl = resource_list(h).get()\n"
        "print(isinstance(rl.free, ResourceSet), rl.all, rl.free.nnodes, rl.up.ncores,"
        " rl.allocated.nnodes, rl.down.nnodes)\n"
        "h.rpc('resource.drain', {'targets': '1', 'reason': 'maint'}).get()\n"
        "st = resource_status(h).get()\n"
        "print(st.online, st.drained, st.drain_info[1]['reason'], st.up, st.all.nnodes)\n"
        "rl = resource_list(h).get()\n"
        "print(rl.down, rl.free)\n")
    with Instance(test_size=2, cores_per_node=2) as inst:
        env = inst.environ(0)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "fluxnb" / "compat" / "python"), str(ROOT)])
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "True rank[0-1]/core[0-1] 2 4 0 0",
        "0-1 1 maint 0 2",
        "rank1/core[0-1] rank0/core[0-1]"]


REAL_FLUX = "/opt/flux/bin/flux"


@pytest.mark.skipif(not os.access(REAL_FLUX, os.X_OK), reason="needs flux-core at /opt/flux")
def test_same_answers_as_real_flux_core():
    """Hostlists, idsets, R, eventlog lines, URIs, constraint and shape
    parses, durations and output formats: each case of flux_diff_cases.py
    gives the same value (or exception type) as flux-core's own package."""
    import json
    script = Path(__file__).with_name("flux_diff_cases.py")
    real = subprocess.run([REAL_FLUX, "python", str(script)], capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items()
                                            if k not in ("PYTHONPATH", "FLUX_URI")})
    assert real.returncode == 0, real.stderr
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "fluxnb" / "compat" / "python"), str(ROOT)]))
    ours = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert ours.returncode == 0, ours.stderr
    real_out, our_out = json.loads(real.stdout), json.loads(ours.stdout)
    assert len(real_out) > 150
    diff = {k: (v, our_out.get(k)) for k, v in real_out.items() if our_out.get(k) != v}
    assert not diff, diff
