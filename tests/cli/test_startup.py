"""What a ``flux`` command loads: the shim inside an instance runs ``python -S`` and the
command path imports no heavy module (issue 17). Not timed: the modules a command
imports are observed (``PYTHONPROFILEIMPORTTIME``, i.e. ``-X importtime``, lists each
module as it is first imported), and the job of a ``-S`` shim still gets a normal
Python with fluxnb's ``flux`` package."""

from __future__ import annotations

import shutil
import subprocess

import pytest

#: modules no CLI command path should load: notebook and plotting stacks, YAML, pyzmq
#: (the CLI speaks ZMTP itself), asyncio, the executor's concurrent.futures, and the
#: standard modules whose import costs a command most (typing, dataclasses/inspect)
HEAVY = {"yaml", "networkx", "plotly", "IPython", "ipywidgets", "matplotlib", "numpy",
         "zmq", "asyncio", "concurrent.futures", "dataclasses", "inspect", "typing",
         "fluxnb.job.executor", "fluxnb.runtime.broker", "fluxnb.runtime.instance"}


def imported(env, *args) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the instance's ``flux`` shim as a shell would; the modules it imported."""
    e = dict(env, PYTHONPROFILEIMPORTTIME="1")
    r = subprocess.run(["flux", *args], env=e, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    mods = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                mods.add(name)
    r.stderr = "\n".join(ln for ln in r.stderr.splitlines() if not ln.startswith("import time:"))
    return r, mods


def test_shim_runs_python_without_site(env):
    shim = shutil.which("flux", path=env["PATH"])
    with open(shim) as f:
        first = f.readline()
    assert first.startswith("#!") and first.split()[1:] == ["-S"], first
    r, mods = imported(env, "getattr", "size")
    assert r.returncode == 0 and r.stdout == "4\n", r.stderr
    assert "site" not in mods   # -S: no site, no .pth files run at each command
    assert "fluxnb.cli.main" in mods   # (the listing is real)


@pytest.mark.parametrize("args", [("getattr", "size"), ("run", "true"), ("submit", "true"),
                                  ("jobs", "-a"), ("kvs", "put", "startup.a=1"),
                                  ("--help",)], ids=lambda a: " ".join(a))
def test_command_path_imports_nothing_heavy(env, args):
    r, mods = imported(env, *args)
    assert r.returncode == 0, r.stderr
    assert mods, "no import listing: PYTHONPROFILEIMPORTTIME was not honoured"
    assert not HEAVY & mods, sorted(HEAVY & mods)


def test_job_of_the_shim_gets_a_normal_python(env, tmp_path):
    # -S is the shim's own: the job's Python runs site and finds fluxnb's `flux` package
    code = ("import sys, flux; print(sys.flags.no_site, 'site' in sys.modules); "
            "print(flux.Flux().attr_get('size'))")
    r = subprocess.run(["flux", "run", "python3", "-c", code], env=env, capture_output=True,
                       text=True, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["0 True", "4"]


def test_shim_falls_back_to_site_when_its_paths_are_gone(env, tmp_path):
    # a shim written by a fluxnb that has since moved: it runs site and finds fluxnb there
    shim = shutil.which("flux", path=env["PATH"])
    text = open(shim).read().replace("sys.path += [", "sys.path += [] and [", 1)
    moved = tmp_path / "flux"
    moved.write_text(text)
    moved.chmod(0o755)
    e = dict(env)
    e.pop("PYTHONPATH", None)   # only site's directories can find fluxnb now
    r = subprocess.run([str(moved), "getattr", "size"], env=e, capture_output=True,
                       text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "4\n"), r.stderr


def test_the_cli_handle_needs_no_pyzmq(env):
    # the CLI's handles do not load pyzmq (local:// is the framed unix socket of
    # fluxnb/runtime/connector.py), yet every reply arrives (large ones included)
    value = "x" * 100_000   # > 64 KiB: a large frame each way
    r = subprocess.run(["flux", "kvs", "put", f"startup.big={value}"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r, mods = imported(env, "kvs", "get", "startup.big")
    assert (r.returncode, r.stdout) == (0, value + "\n"), r.stderr[-500:]
    assert "zmq" not in mods and "fluxnb.runtime.connector" in mods
    assert "socket" not in mods   # the connector uses the C module alone


def test_a_host_calling_main_keeps_pyzmq_handles(env, monkeypatch, capsys):
    # the notebook's %flux runs main(argv) in the kernel: the choice of transport is a
    # process's, so only a process entry point (argv from sys.argv) makes it
    from fluxnb.cli.main import main
    from fluxnb.runtime import client
    monkeypatch.setattr(client, "NATIVE_IPC", False)
    monkeypatch.setenv("FLUX_URI", env["FLUX_URI"])
    assert main(["getattr", "size"]) == 0
    assert capsys.readouterr().out == "4\n"
    assert client.NATIVE_IPC is False
