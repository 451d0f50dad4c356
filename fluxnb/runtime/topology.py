"""Shape of the tree-based overlay network (TBON) and the endpoints of its ranks.

Ranks are laid out as a k-ary tree in breadth-first order, as flux-core's
``tbon.fanout`` does: the parent of rank ``r`` is ``(r - 1) // k``.

Examples
--------
>>> t = Topology(size=8, fanout=2, rundir="/tmp/x", transport="inproc", instance_id="i")
>>> t.parent(5), t.children(1)
(2, [3, 4])
>>> t.child_toward(0, 6)
2
>>> t.child_toward(1, 6) is None
True
"""

from __future__ import annotations

import os


def kary_children(rank: int, size: int, fanout: int) -> list[int]:
    """Children of ``rank`` in the k-ary tree of ``size`` ranks (RFC 3's TBON).

    >>> kary_children(1, 7, 2), kary_children(2, 6, 2)
    ([3, 4], [5])
    """
    first = rank * fanout + 1
    return list(range(first, min(first + fanout, size)))


class Topology:
    """TBON of ``size`` ranks with fan-out ``fanout``.

    ``transport`` is ``inproc`` (all brokers in one process) or ``ipc`` (each
    broker its own process); clients always reach a broker over ipc.
    """

    def __init__(self, size: int, fanout: int, rundir: str, transport: str = "inproc",
                 instance_id: str = ""):
        if size < 1:
            raise ValueError(f"instance size must be >= 1, got {size}")
        if fanout < 1:
            raise ValueError(f"tbon.fanout must be >= 1, got {fanout}")
        if transport not in ("inproc", "ipc"):
            raise ValueError(f"unknown transport {transport!r} (inproc or ipc)")
        self.size = size
        self.fanout = fanout
        self.rundir = rundir
        self.transport = transport
        self.instance_id = instance_id or os.path.basename(rundir)

    def parent(self, rank: int) -> int | None:
        return None if rank == 0 else (rank - 1) // self.fanout

    def children(self, rank: int) -> list[int]:
        return kary_children(rank, self.size, self.fanout)

    def child_toward(self, rank: int, target: int) -> int | None:
        """The child of ``rank`` whose subtree holds ``target``, or None if none does."""
        node = target
        while node > rank:
            up = (node - 1) // self.fanout
            if up == rank:
                return node
            node = up
        return None

    def depth(self, rank: int) -> int:
        d = 0
        while rank > 0:
            rank = (rank - 1) // self.fanout
            d += 1
        return d

    def local_path(self, rank: int) -> str:
        return os.path.join(self.rundir, "local" if rank == 0 else f"local-{rank}")

    def local_endpoint(self, rank: int) -> str:
        return "ipc://" + self.local_path(rank)

    def local_uri(self, rank: int) -> str:
        return "local://" + self.local_path(rank)

    def local_inproc(self, rank: int) -> str:
        """The same broker socket for clients in the instance's own process."""
        return f"inproc://fluxnb-{self.instance_id}-local-{rank}"

    def tbon_endpoint(self, rank: int) -> str:
        if self.transport == "inproc":
            return f"inproc://fluxnb-{self.instance_id}-tbon-{rank}"
        return "ipc://" + os.path.join(self.rundir, f"tbon-{rank}")
