"""TraceTimeline: jobs by rank, annotated functions and utilization from a trace."""

from __future__ import annotations

import pytest



def make_trace():
    def n(name, t, ident):
        return {"name": name, "cat": "job.event", "ph": "n", "ts": t * 1e6, "pid": 1, "tid": 0,
                "id": ident}
    events = []
    for k, (a, b) in enumerate([(0.0, 1.0), (0.5, 2.0)]):
        ident = f"/j{k}"
        events.append({"name": f"job j{k}", "cat": "job", "ph": "b", "ts": a * 1e6, "pid": 1,
                       "tid": 0, "id": ident,
                       "args": {"instance": "", "jobid": f"j{k}", "id": k, "name": "dock",
                                "ranks": "0-1" if k == 0 else "2", "nnodes": 2 - k, "ntasks": 2}})
        for name, t in [("submit", a), ("priority", a), ("alloc", a + 0.1), ("start", a + 0.1),
                        ("finish", b - 0.1), ("free", b), ("clean", b)]:
            events.append(n(name, t, ident))
    events.append({"name": "score", "cat": "app", "ph": "X", "ts": 0.2e6, "dur": 0.3e6, "pid": 99,
                   "tid": 99})
    return {"traceEvents": events, "otherData": {"instances": [{"path": "", "size": 4}]}}


def test_timeline_rows_and_utilization():
    from fluxnb.widgets import TraceTimeline
    tl = TraceTimeline(make_trace(), title="t")
    bars = [d for d in tl.data if d.type == "bar"]
    jobs = [b for b in bars if b.name == "jobs of root"][0]
    assert sorted(jobs.y) == [".  rank 0".replace("  ", " "), ". rank 1", ". rank 2"]
    assert [b for b in bars if b.name == "annotated functions"][0].y == ("pid 99 tid 99",)
    util = [d for d in tl.data if d.type == "scatter"][0]
    assert max(util.y) == 0.75  # 3 of 4 nodes held while both jobs ran
    assert tl.to_figure().layout.title.text == "t"


def test_from_args_reads_a_file(tmp_path):
    import json
    from fluxnb.widgets.timeline import TraceTimeline
    path = tmp_path / "t.json"
    path.write_text(json.dumps(make_trace()))
    tl = TraceTimeline.from_args(["-i", str(path)])
    assert len(tl.data) == 3
