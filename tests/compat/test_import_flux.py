"""`import flux` inside an instance gives fluxnb's package, unless a real flux-core wins."""

from __future__ import annotations

import os
import sys

import fluxnb.compat as compat
from tests.conftest import ROOT, fluxnb_cmd

WHERE = "import flux, os; print(os.path.dirname(os.path.dirname(flux.__file__)))"


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def test_every_process_of_an_instance_imports_fluxnbs_flux(tmp_path):
    # the initial program, a job on each of two nodes, and a batch job's script
    script = (f"python3 -c '{WHERE}'; flux run -N2 python3 -c '{WHERE}'; "
              f"id=$(flux batch -n1 --output=batch.out --wrap python3 -c '{WHERE}'); "
              "flux job wait-event $id clean >/dev/null; cat batch.out")
    r = fluxnb_cmd("start", "--test-size=2", "sh", "-c", script, env=_env(), timeout=120,
                   cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [compat.PATH] * 4, r.stdout


def test_a_real_flux_package_wins_and_fluxnb_says_how_to_reach_its_own(tmp_path):
    (tmp_path / "flux").mkdir()
    (tmp_path / "flux" / "__init__.py").write_text("")
    env = _env(PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}")
    r = fluxnb_cmd("start", "--test-size=1", "flux", "run", "python3", "-c", WHERE, env=env,
                   timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path)
    assert r.stderr.count("fluxnb.compat.use()") == 1, r.stderr


def test_add_to_environ_prepends_once_and_keeps_the_rest():
    env = compat.add_to_environ({"PYTHONPATH": "/x/y"})
    assert env["PYTHONPATH"] == f"{compat.PATH}{os.pathsep}/x/y"
    assert compat.add_to_environ(dict(env))["PYTHONPATH"] == env["PYTHONPATH"]
    assert compat.add_to_environ({})["PYTHONPATH"] == compat.PATH


def test_use_makes_fluxnbs_package_win_in_this_process(tmp_path, monkeypatch):
    (tmp_path / "flux").mkdir()
    (tmp_path / "flux" / "__init__.py").write_text("REAL = True\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path)] + [p for p in sys.path if p != compat.PATH])
    saved = {k: v for k, v in sys.modules.items() if k == "flux" or k.startswith("flux.")}
    for k in saved:
        del sys.modules[k]
    try:
        assert compat.add_to_sys_path() is False
        import flux
        assert getattr(flux, "REAL", False)
        compat.use()
        import flux as flux2
        assert flux2.__file__.startswith(compat.PATH)
    finally:
        for k in [m for m in sys.modules if m == "flux" or m.startswith("flux.")]:
            del sys.modules[k]
        sys.modules.update(saved)
