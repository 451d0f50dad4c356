"""``fluxnb resource-query`` beside flux-sched's ``resource-query``, as a user runs them.

Both tools read the same GRUG graph file (written here:
cluster > node[N] > socket[2] > core[28] + 1 gpu per socket, 1 + 61 N vertices),
the same jobspec files and the same command stream on stdin::

    match allocate node.yaml                 x M   1-node jobs on the empty graph
    stat
    match allocate core.yaml                 x M   1-core jobs
    stat
    match allocate fill.yaml                 x 1   every free node (count 1..N): the graph is full
    stat
    match allocate_orelse_reserve node.yaml  x M   1-node jobs on the full graph
    quit

run as ``resource-query -L graph -P POLICY -e -d -t /dev/null`` (match output
is formatted but discarded, by both).  Each tool's own ``INFO: ELAPSE=`` per
match (flux-sched times the jobspec parse and the match, so does fluxnb) gives
the median of each phase; ``stat`` lines (printed on stdout) separate the
phases.  The wall time of the whole session (load, every command, exit) is
timed too.  The two tools run alternately (fluxnb, flux-sched, fluxnb, ...),
``--repeat`` times each; a row shows the median [min-max] of the per-session
medians and the ratio (> 1: fluxnb ahead).

Then the cost growth of policy ``first`` from 1k to 10k to 50k nodes
(``--growth``): per-match medians at each size, against the growth in nodes
(no row may grow worse than linearly).

Usage::

    python bench/match.py                          # N=1000 and N=10000, then growth to 50000
    python bench/match.py --nodes 1000 --repeat 5 --no-growth
    python bench/match.py --growth 1000 10000 50000 --growth-peer   # flux-sched at 50k too (~10 GiB)
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peer import Peer, fluxnb_env, header, show  # noqa: E402

NODE_YAML = """\
version: 1
resources:
  - type: node
    count: 1
    exclusive: true
    with:
      - type: slot
        count: 1
        label: task
        with:
          - type: socket
            count: 2
            with:
              - type: core
                count: 28
              - type: gpu
                count: 1
attributes:
  system:
    duration: 3600
tasks:
  - command: [ "app" ]
    slot: task
    count:
      per_slot: 1
"""

def fill_yaml(n: int) -> str:
    """One job of as many whole nodes as are free (1 to ``n``): fills the graph in one match."""
    return NODE_YAML.replace("    count: 1\n    exclusive: true",
                             f"    count:\n      min: 1\n      max: {n}\n      operator: \"+\"\n      operand: 1\n    exclusive: true", 1)


CORE_YAML = """\
version: 1
resources:
  - type: slot
    count: 1
    label: task
    with:
      - type: core
        count: 1
attributes:
  system:
    duration: 3600
tasks:
  - command: [ "app" ]
    slot: task
    count:
      per_slot: 1
"""

_KEYS = """\
    <key id="root" for="node" attr.name="root" attr.type="int"><default>0</default></key>
    <key id="type" for="node" attr.name="type" attr.type="string"/>
    <key id="basename" for="node" attr.name="basename" attr.type="string"/>
    <key id="unit" for="node" attr.name="unit" attr.type="string"/>
    <key id="size" for="node" attr.name="size" attr.type="long"><default>1</default></key>
    <key id="subsystem" for="node" attr.name="subsystem" attr.type="string"><default>containment</default></key>
    <key id="e_subsystem" for="edge" attr.name="e_subsystem" attr.type="string"><default>containment</default></key>
    <key id="relation" for="edge" attr.name="relation" attr.type="string"><default>contains</default></key>
    <key id="rrelation" for="edge" attr.name="rrelation" attr.type="string"><default>in</default></key>
    <key id="id_scope" for="edge" attr.name="id_scope" attr.type="int"><default>0</default></key>
    <key id="id_start" for="edge" attr.name="id_start" attr.type="int"><default>0</default></key>
    <key id="id_stride" for="edge" attr.name="id_stride" attr.type="int"><default>1</default></key>
    <key id="gen_method" for="edge" attr.name="gen_method" attr.type="string"><default>MULTIPLY</default></key>
    <key id="multi_scale" for="edge" attr.name="multi_scale" attr.type="int"><default>1</default></key>
    <key id="as_tgt_subsystem" for="edge" attr.name="as_tgt_subsystem" attr.type="string"><default>containment</default></key>
    <key id="as_tgt_uplvl" for="edge" attr.name="as_tgt_uplvl" attr.type="int"><default>1</default></key>
    <key id="as_src_uplvl" for="edge" attr.name="as_src_uplvl" attr.type="int"><default>1</default></key>
"""


def grug(n: int) -> str:
    """A GRUG recipe (GraphML) of the bench cluster with ``n`` nodes."""
    def vtx(name: str, root: bool = False) -> str:
        r = '<data key="root">1</data>' if root else ""
        return (f'        <node id="{name}">{r}<data key="type">{name}</data>'
                f'<data key="basename">{name}</data></node>\n')

    def edge(src: str, dst: str, scope: int, scale: int) -> str:
        return (f'        <edge id="{src}2{dst}" source="{src}" target="{dst}">'
                f'<data key="id_scope">{scope}</data><data key="multi_scale">{scale}</data></edge>\n')

    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n' + _KEYS
            + '    <graph id="bench" edgedefault="directed">\n'
            + vtx("cluster", True) + vtx("node") + vtx("socket") + vtx("core") + vtx("gpu")
            + edge("cluster", "node", 1, n) + edge("node", "socket", 1, 2)
            + edge("socket", "core", 2, 28) + edge("socket", "gpu", 2, 1)
            + "    </graph>\n</graphml>\n")


PHASES = ("1-node allocate", "1-core allocate", "fill", "1-node reserve on full graph")


def stream(d: Path, n: int, m: int) -> str:
    node, core, fill = d / "node.yaml", d / "core.yaml", d / f"fill-{n}.yaml"
    fill.write_text(fill_yaml(n))
    lines = ([f"match allocate {node}"] * m + ["stat"] + [f"match allocate {core}"] * m + ["stat"]
             + [f"match allocate {fill}"] + ["stat"]
             + [f"match allocate_orelse_reserve {node}"] * m + ["quit"])
    return "\n".join(lines) + "\n"


_ELAPSE = re.compile(r"INFO: ELAPSE=([0-9.]+)")


def session(argv: list[str], env: dict[str, str], text: str) -> tuple[float, list[list[float]]]:
    """Run one resource-query session; its wall time and the ELAPSE values of each phase."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, input=text, env=env, capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {p.returncode}: {p.stderr[-1000:]}")
    phases: list[list[float]] = [[]]
    for line in p.stdout.splitlines():
        if line.startswith("INFO: Num. of Jobs Matched"):
            phases.append([])
        else:
            mo = _ELAPSE.match(line)
            if mo:
                phases[-1].append(float(mo.group(1)))
    return wall, phases


def run_size(n: int, policies: list[str], peer_rq: str | None, peer: Peer | None, args: argparse.Namespace,
             d: Path, repeat: int) -> dict[tuple[str, str], list[float]]:
    """Both tools at ``n`` nodes; print the rows; return fluxnb's per-session medians by row."""
    graph = d / f"bench-{n}.graphml"
    if not graph.exists():
        graph.write_text(grug(n))
    print(f"N={n} nodes ({1 + 61 * n} vertices), ELAPSE per match in ms (median of each session's median)")
    ours_by_row: dict[tuple[str, str], list[float]] = {}
    for pol in policies:
        m = args.high_matches if pol == "high" else args.matches
        text = stream(d, n, m)
        opts = ["-L", str(graph), "-P", pol, "-e", "-d", "-t", os.devnull]
        a_argv = [sys.executable, "-m", "fluxnb.cli.main", "resource-query", *opts]
        runs: dict[str, list[tuple[float, list[list[float]]]]] = {"a": [], "b": []}
        for _ in range(repeat):
            runs["a"].append(session(a_argv, fluxnb_env(), text))
            if peer_rq is not None and peer is not None:
                runs["b"].append(session([peer_rq, *opts], peer.env(), text))
        want = {0: m, 1: m, 2: 1, 3: m}
        for tool, rs in runs.items():
            for _wall, ph in rs:
                for i, k in want.items():
                    if len(ph) < 4 or len(ph[i]) != k:
                        got = [len(x) for x in ph]
                        print(f"  warning: {'fluxnb' if tool == 'a' else 'flux-sched'} {pol}: "
                              f"phase {PHASES[i]!r} printed {got} ELAPSE lines, wanted {k}")
        for i in (0, 1, 3):
            for stat, pick in (("median", statistics.median), ("first match", lambda xs: xs[0])):
                a = [pick(ph[i]) * 1e3 for _w, ph in runs["a"] if len(ph) > i and ph[i]]
                b = [pick(ph[i]) * 1e3 for _w, ph in runs["b"] if len(ph) > i and ph[i]]
                if not a:
                    continue
                print("  " + show(f"{pol} {PHASES[i]} {stat}", a, b, higher_is_better=False,
                                  unit="ms", width=48))
                if stat == "median":
                    ours_by_row[(pol, PHASES[i])] = a
        fill_a = [ph[2][0] * 1e3 for _w, ph in runs["a"] if len(ph) > 2 and ph[2]]
        fill_b = [ph[2][0] * 1e3 for _w, ph in runs["b"] if len(ph) > 2 and ph[2]]
        print("  " + show(f"{pol} fill: one job of every free node", fill_a, fill_b,
                          higher_is_better=False, unit="ms", width=48))
        print("  " + show(f"{pol} whole session wall ({3 * m + 1} matches)",
                          [w for w, _ in runs["a"]], [w for w, _ in runs["b"]],
                          higher_is_better=False, unit="s", width=48))
    return ours_by_row


def growth(sizes: list[int], medians: dict[int, dict[tuple[str, str], list[float]]]) -> None:
    print(f"growth of fluxnb's per-match median, policy first ({' -> '.join(map(str, sizes))} nodes)")
    rows = sorted({row for per in medians.values() for row in per if row[0] == "first"})
    for row in rows:
        vals = [statistics.median(medians[n][row]) for n in sizes if row in medians.get(n, {})]
        if len(vals) != len(sizes):
            continue
        parts = [f"{v:.3f}" for v in vals]
        steps = []
        worst = "linear or better"
        for (n0, v0), (n1, v1) in zip(zip(sizes, vals), zip(sizes[1:], vals[1:])):
            g = v1 / v0 if v0 else float("inf")
            steps.append(f"x{g:.2f} for x{n1 / n0:g} nodes")
            if g > n1 / n0:
                worst = "WORSE THAN LINEAR"
        print(f"  {row[1]:<34} {' -> '.join(parts)} ms   ({', '.join(steps)}: {worst})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--matches", type=int, default=30, help="matches per measured phase (M)")
    ap.add_argument("--high-matches", type=int, default=10,
                    help="matches per phase under policy high (flux-sched: ~1 s each at 10k)")
    ap.add_argument("--repeat", type=int, default=3, help="sessions per tool, alternated")
    ap.add_argument("--policies", nargs="+", default=["first", "high"])
    ap.add_argument("--growth", type=int, nargs="+", default=[1000, 10000, 50000],
                    help="node counts of the policy-first growth table")
    ap.add_argument("--no-growth", action="store_true")
    ap.add_argument("--growth-peer", action="store_true",
                    help="run flux-sched at the growth-only sizes too (50k nodes: ~10 GiB)")
    ap.add_argument("--no-peer", action="store_true", help="fluxnb alone")
    args = ap.parse_args()
    peer = None if args.no_peer else Peer.find()
    peer_rq = peer.tool("resource-query") if peer else None
    print(header(peer if peer_rq else None, "resource-query: fluxnb vs flux-sched, same graph, "
                 "jobspecs and command stream"))
    if peer is not None and peer_rq is None:
        print("# flux-sched's resource-query not found under the peer prefix "
              "(build with --with-sched); fluxnb's figures alone")
    with tempfile.TemporaryDirectory(prefix="fluxnb-bench-match-") as tmp:
        d = Path(tmp)
        (d / "node.yaml").write_text(NODE_YAML)
        (d / "core.yaml").write_text(CORE_YAML)
        medians: dict[int, dict[tuple[str, str], list[float]]] = {}
        for n in args.nodes:
            medians[n] = run_size(n, args.policies, peer_rq, peer, args, d, args.repeat)
            (d / f"bench-{n}.graphml").unlink()
        if not args.no_growth:
            for n in args.growth:
                if n in medians:
                    continue
                medians[n] = run_size(n, ["first"], peer_rq if args.growth_peer else None, peer,
                                      args, d, 1)
                (d / f"bench-{n}.graphml").unlink()
            growth(args.growth, medians)


if __name__ == "__main__":
    main()
