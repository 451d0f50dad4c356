"""Which task ranks run on which broker rank: slots from R, tasks from the jobspec.

Tasks are placed in blocks, as the flux shell does: broker ranks in order. The
jobspec says how many tasks (``per_slot`` times its slots, or a ``total``); they
are spread over the slots R holds as evenly as possible, earlier ranks first
(an exclusive node of 4 cores holding a 1-core slot still runs one task). Or
``per_resource``
(RFC 14: N tasks per node, core or gpu of R). A slot is sized by its cores;
other resources in it (storage, memory: a canonical jobspec on Fluxion) are
scheduling-only and do not change the layout.

>>> from fluxnb.runtime.util.rv1 import ResourceSet
>>> R = ResourceSet.from_ranks({0: {"core": "0-3"}, 1: {"core": "0-1"}})
>>> js = {"resources": [{"type": "slot", "count": 3, "label": "task",
...        "with": [{"type": "core", "count": 2}]}],
...       "tasks": [{"command": ["x"], "slot": "task", "count": {"per_slot": 1}}]}
>>> task_layout(js, R)
{0: [0, 1], 1: [2]}
>>> exclusive = {"resources": [{"type": "node", "count": 2, "exclusive": True, "with": [
...     {"type": "slot", "count": 1, "label": "task", "with": [{"type": "core", "count": 1}]}]}],
...     "tasks": [{"command": ["x"], "slot": "task", "count": {"per_slot": 1}}]}
>>> task_layout(exclusive, ResourceSet.from_ranks({0: {"core": "0-3"}, 1: {"core": "0-3"}}))
{0: [0], 1: [1]}
>>> tiered = {"resources": [{"type": "cluster", "count": 1, "with": [
...     {"type": "pfs", "count": 4096, "unit": "GB", "exclusive": True},
...     {"type": "node", "count": 2, "with": [{"type": "slot", "count": 1, "label": "default",
...         "with": [{"type": "core", "count": 2}, {"type": "ssd", "count": 100}]}]}]}],
...     "tasks": [{"command": ["app"], "slot": "default", "count": {"per_slot": 1}}]}
>>> task_layout(tiered, ResourceSet.from_ranks({2: {"core": "0-1"}, 3: {"core": "0-1"}}))
{2: [0], 3: [1]}
>>> tiered["tasks"][0]["count"] = {"per_resource": {"type": "core", "count": 1}}
>>> task_layout(tiered, ResourceSet.from_ranks({2: {"core": "0-1"}, 3: {"core": "0-1"}}))
{2: [0, 1], 3: [2, 3]}
"""

from __future__ import annotations

from ..util.rv1 import ResourceSet


def _slot_vertex(jobspec: dict) -> dict | None:
    """The slot the (first) task runs in: the one with the task's label, else the first."""
    tasks = jobspec.get("tasks") or [{}]
    label = tasks[0].get("slot")
    first = None
    stack = list(reversed(jobspec.get("resources") or []))
    while stack:
        v = stack.pop()
        if v.get("type") == "slot":
            if label is None or v.get("label") == label:
                return v
            first = first or v
        stack.extend(reversed(v.get("with") or []))
    return first


def _slot_cores(jobspec: dict) -> int:
    """Cores in one slot, at any depth (``slot>socket>core`` too).

    Only cores size a slot here: a canonical jobspec may also put storage or
    memory in a slot (Fluxion schedules them), but R_lite, which the shell
    reads, lists only cores and gpus of each rank.
    """
    def cores(vertices, mult: int) -> int:
        n = 0
        for v in vertices or []:
            here = mult * _count(v)
            n += here if v.get("type") == "core" else cores(v.get("with"), here)
        return n
    slot = _slot_vertex(jobspec)
    return (cores(slot.get("with"), 1) if slot else 0) or 1


def _slot_count(jobspec: dict) -> int | None:
    """How many slots the jobspec asks for: the counts above the slot, multiplied."""
    slot = _slot_vertex(jobspec)
    if slot is None:
        return None

    def walk(vertices, mult: int) -> int:
        n = 0
        for v in vertices or []:
            here = mult * _count(v)
            n += here if v is slot else walk(v.get("with"), here)
        return n
    return walk(jobspec.get("resources"), 1) or None


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
    if "per_slot" in count:
        # as the flux shell: the task count comes from the jobspec, and R only says
        # where they go (an exclusive node holds more cores than its slots need)
        nslots = _slot_count(jobspec)
        if nslots is not None:
            count = {"total": nslots * int(count["per_slot"])}
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
    elif "per_resource" in count:
        # RFC 14: N tasks on each resource of a type R lists (node, core, gpu)
        rtype = count["per_resource"].get("type")
        n = int(count["per_resource"].get("count", 1))
        by_rank = R.by_rank()
        if rtype == "node":
            per_rank = {rank: n for rank in by_rank}
        else:
            per_rank = {rank: n * len(children.get(rtype, ())) for rank, children in by_rank.items()}
            if not any(per_rank.values()):
                raise ValueError(f"tasks[0].count.per_resource.type: R holds no '{rtype}' "
                                 "to place tasks on (R lists node, core and gpu)")
    else:
        per_slot = int(count.get("per_slot", 1))
        per_rank = {rank: n * per_slot for rank, n in slots.items()}
    layout, next_id = {}, 0
    for rank, n in per_rank.items():
        if n:
            layout[rank] = list(range(next_id, next_id + n))
            next_id += n
    return layout
