"""Which task ranks run on which broker rank: slots from R, tasks from the jobspec.

Tasks are placed in blocks, as the flux shell does: broker ranks in order, each
taking one task per slot it holds (``per_slot``), or a ``total`` count spread
over the slots as evenly as possible, earlier ranks first.

>>> from fluxnb.runtime.util.rv1 import ResourceSet
>>> R = ResourceSet.from_ranks({0: {"core": "0-3"}, 1: {"core": "0-1"}})
>>> js = {"resources": [{"type": "slot", "count": 3, "label": "task",
...        "with": [{"type": "core", "count": 2}]}],
...       "tasks": [{"command": ["x"], "slot": "task", "count": {"per_slot": 1}}]}
>>> task_layout(js, R)
{0: [0, 1], 1: [2]}
"""

from __future__ import annotations

from ..util.rv1 import ResourceSet


def _slot_cores(jobspec: dict) -> int:
    def walk(vertices):
        for v in vertices or []:
            if v.get("type") == "slot":
                return sum(_count(c) for c in v.get("with") or [] if c.get("type") == "core") or 1
            found = walk(v.get("with"))
            if found:
                return found
        return None
    return walk(jobspec.get("resources")) or 1


def _count(v: dict) -> int:
    c = v.get("count", 1)
    return c.get("min", 1) if isinstance(c, dict) else int(c)


def task_layout(jobspec: dict, R: ResourceSet) -> dict[int, list[int]]:
    """Map broker rank -> global task ranks it runs."""
    tasks = jobspec.get("tasks") or []
    if not tasks:
        raise ValueError("tasks: jobspec has no tasks")
    count = tasks[0].get("count") or {"per_slot": 1}
    shell_opts = (((jobspec.get("attributes") or {}).get("system") or {}).get("shell") or {}).get("options") or {}
    if (shell_opts.get("per-resource") or {}).get("type") == "node":
        # one task per node (flux batch/alloc: a broker per node)
        ranks = sorted(R.by_rank())
        return {rank: [i] for i, rank in enumerate(ranks)}
    per_core = _slot_cores(jobspec)
    slots = {rank: max(1, len(children.get("core", ())) // per_core)
             for rank, children in R.by_rank().items()}
    if not slots:
        raise ValueError("R: no ranks to run tasks on")
    if "total" in count:
        total = int(count["total"])
        nslots = sum(slots.values())
        per_rank = {}
        left = total
        for i, (rank, n) in enumerate(slots.items()):
            # spread the total over slots; earlier ranks take the remainder
            share = total * n // nslots
            per_rank[rank] = share
            left -= share
        for rank in slots:
            if left <= 0:
                break
            per_rank[rank] += 1
            left -= 1
    else:
        per_slot = int(count.get("per_slot", 1))
        per_rank = {rank: n * per_slot for rank, n in slots.items()}
    layout, next_id = {}, 0
    for rank, n in per_rank.items():
        if n:
            layout[rank] = list(range(next_id, next_id + n))
            next_id += n
    return layout
