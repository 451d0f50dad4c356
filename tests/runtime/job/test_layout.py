"""Block task layout over the ranks of R, as the flux shell places tasks."""

from fluxnb.runtime.job.layout import task_layout
from fluxnb.runtime.util.rv1 import ResourceSet


def spec(slots, cores=1, count=None):
    return {"resources": [{"type": "slot", "count": slots, "label": "task",
                           "with": [{"type": "core", "count": cores}]}],
            "tasks": [{"command": ["x"], "slot": "task", "count": count or {"per_slot": 1}}]}


def test_one_task_per_slot_in_rank_order():
    R = ResourceSet.from_ranks({0: {"core": "0-1"}, 2: {"core": "0-3"}})
    assert task_layout(spec(6), R) == {0: [0, 1], 2: [2, 3, 4, 5]}


def test_multi_core_slots():
    R = ResourceSet.from_ranks({0: {"core": "0-3"}, 1: {"core": "0-3"}})
    assert task_layout(spec(4, cores=2), R) == {0: [0, 1], 1: [2, 3]}


def test_total_task_count_spread_over_slots():
    R = ResourceSet.from_ranks({0: {"core": "0-1"}, 1: {"core": "0-1"}})
    layout = task_layout(spec(4, count={"total": 5}), R)
    assert sorted(t for ts in layout.values() for t in ts) == [0, 1, 2, 3, 4]
    assert len(layout[0]) == 3 and len(layout[1]) == 2
