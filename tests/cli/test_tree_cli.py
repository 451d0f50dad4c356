"""`flux tree` with flux-sched's flux-tree interface: -T/-J/-N/-c/-g/-Q/-P/-M/-o/-X,
--perf-format, --leaf, --dry-run; the Jobscript runs at the leaves with FLUX_TREE_*."""

from __future__ import annotations

import os
import subprocess

import pytest

from fluxnb.cli.tree import PerfFormat, share


def flux(env, *args, cwd=None, timeout=180):
    return subprocess.run(["flux", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def script(tmp_path):
    """A Jobscript that records its FLUX_TREE_* and its instance's size, submits a job,
    and fails (exit 3) at one chosen invocation."""
    path = tmp_path / "js.sh"
    path.write_text(
        "#!/bin/sh\n"
        'echo "$FLUX_TREE_ID $FLUX_TREE_JOBSCRIPT_INDEX $FLUX_TREE_NNODES '
        '$FLUX_TREE_NCORES_PER_NODE $FLUX_TREE_NGPUS_PER_NODE $(flux getattr size)"'
        f" >> {tmp_path}/calls.txt\n"
        "flux submit -n1 true >/dev/null\n"
        '[ "$FLUX_TREE_ID@$FLUX_TREE_JOBSCRIPT_INDEX" = "$FAIL_AT" ] && exit 3\n'
        "exit 0\n")
    path.chmod(0o755)
    return path


def test_share_is_flux_trees_split():
    # flux-tree: n / size + (size + n % size) / (size + rank), rank from 1
    for n in range(0, 12):
        for size in range(1, 5):
            want = [n // size + (size + n % size) // (size + r) for r in range(1, size + 1)]
            assert [share(n, size, r) for r in range(1, size + 1)] == want


def test_dry_run_shows_the_children_and_their_options(env, script):
    r = flux(env, "tree", "--dry-run", "-T", "2x3", "-N", "4", "-c", "2", "-J", "5",
             "-Q", "easy:fcfs", "-M", "high", "--", str(script))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["flux-tree: dry-run: FLUXION_QMANAGER_OPTIONS:queue-policy=easy",
                         "flux-tree: dry-run: FLUXION_RESOURCE_OPTIONS:"
                         "hwloc-allowlist=node,core,gpu policy=high"]
    assert "flux-tree: dry-run: Rank=1: N=2 c=2" in lines
    assert "flux-tree: dry-run: Rank=1: T=--topology=3" in lines
    assert "flux-tree: dry-run: Rank=1: Q=--queue-policy=fcfs" in lines
    assert f"flux-tree: dry-run: Rank=1: X=--prefix=tree.1 J=--njobs=3 S={script}" in lines
    assert f"flux-tree: dry-run: Rank=2: X=--prefix=tree.2 J=--njobs=2 S={script}" in lines


def test_dry_run_leaf_lists_each_invocation(env, script):
    r = flux(env, "tree", "-d", "--leaf", "-X", "tree.1.2", "-N", "2", "-c", "3", "-J", "2",
             "--", str(script))
    assert r.stdout.splitlines()[:6] == [
        "flux-tree: dry-run: FLUX_TREE_ID=tree.1.2",
        "flux-tree: dry-run: FLUX_TREE_JOBSCRIPT_INDEX=1",
        "flux-tree: dry-run: FLUX_TREE_NCORES_PER_NODE=3",
        "flux-tree: dry-run: FLUX_TREE_NGPUS_PER_NODE=0",
        "flux-tree: dry-run: FLUX_TREE_NNODES=2",
        f"flux-tree: dry-run: eval {script}"]


def test_children_are_capped_by_cores(env, script):
    """More children than cores per node: flux-tree spawns only as many as cores."""
    r = flux(env, "tree", "-d", "-T", "4", "-N", "1", "-c", "2", "-J", "8", "--", str(script))
    assert "Rank=2: N=1 c=1" in r.stdout and "Rank=3" not in r.stdout


@pytest.mark.parametrize("args,err", [
    (["-N", "0"], "nnodes must be greater than 0!"),
    (["-c", "0"], "ncores must be greater than 0!"),
    (["-g", "-1"], "incorrect ngpus!"),
    (["-Q", "lifo"], "invalid queue policy!"),
    (["-M", "random"], "invalid match policy!"),
    (["-P", "depth=3"], "invalid queue params!"),
    (["--leaf", "-T", "2"], "--leaf must not be used together with internal tree-node options!"),
    (["-o", "x.out", "--perf-format", "{nosuch}"], "Unknown format field: nosuch"),
])
def test_bad_options_are_one_line(env, script, args, err):
    r = flux(env, "tree", *args, "--", str(script))
    assert (r.returncode, r.stderr) == (1, f"flux-tree: {err}\n")


def test_a_jobscript_that_cannot_run_and_no_jobscript(env):
    r = flux(env, "tree", "--", "no-such-script")
    assert (r.returncode, r.stderr) == (1, "flux-tree: cannot execute no-such-script!\n")
    r = flux(env, "tree")
    assert r.returncode == 1 and r.stderr.startswith("Usage: flux-tree [OPTIONS] -- Jobscript")


def test_perf_format_header_keeps_width_and_align():
    pf = PerfFormat("{treeid:<8s}|{elapse:>10.2f}|{njobs:>5d}")
    assert pf.header() == "TreeID  |Elapsed(sec)|NJobs"
    assert pf.row({"treeid": "tree", "elapse": 1.5, "njobs": 3}) == "tree    |      1.50|    3"


def test_two_children_run_the_jobscript_and_report(env, script, tmp_path):
    perf = tmp_path / "perf.out"
    r = flux(env, "tree", "-T", "2", "-N", "2", "-c", "2", "-J", "3", "-Q", "easy",
             "-o", str(perf), "-f", str(tmp_path / "logs"), "--", str(script), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    calls = sorted((tmp_path / "calls.txt").read_text().splitlines())
    # 3 invocations split 2 + 1; each leaf owns one node of 2 cores (a nested instance of 1)
    assert calls == ["tree.1 1 1 2 0 1", "tree.1 2 1 2 0 1", "tree.2 1 1 2 0 1"]
    rows = [line.split() for line in perf.read_text().splitlines()]
    assert rows[0] == ["TreeID", "Elapsed(sec)", "Begin(Epoch)", "End(Epoch)", "Match(usec)",
                       "NJobs", "NNodes", "CPN", "GPN"]
    assert [(row[0], row[5:]) for row in rows[1:]] == [
        ("tree", ["3", "2", "2", "0"]), ("tree.1", ["2", "1", "2", "0"]),
        ("tree.2", ["1", "1", "2", "0"])]
    # -Q easy reached the children's qmanager; -f saved their logs
    log = (tmp_path / "logs" / "tree.1.log").read_text()
    assert "enforced policy (queue=default): easy" in log
    assert os.path.exists(tmp_path / "logs" / "tree.2.log")


def test_highest_exit_code_is_reported_with_its_invocation(env, script, tmp_path):
    env = dict(env, FAIL_AT="tree.2@1")
    r = flux(env, "tree", "-T", "2", "-N", "2", "-c", "2", "-J", "2", "--", str(script),
             cwd=tmp_path)
    assert r.returncode == 3
    assert f"flux-tree: warning: {script}: exited with exit code (3)" in r.stderr
    assert "flux-tree: warning: invocation id: tree.2@index[1]" in r.stderr
