"""Entry point of one broker in its own process: ``python -m fluxnb.runtime.brokerd SPEC``.

SPEC is JSON: ``{"rank", "topo": [size, fanout, rundir], "attrs", "config"}``.
The process exits when the instance shuts down, or when the process that started it
ends (its pipe ``alive_fd`` reads end of file).
"""

from __future__ import annotations

import json
import os
import signal
import sys

from .instance import BrokerSet
from .util import gctune
from .topology import Topology


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fluxnb.runtime.brokerd SPEC-JSON", file=sys.stderr)
        return 2
    spec = json.loads(args[0])
    size, fanout, rundir = spec["topo"]
    topo = Topology(size, fanout, rundir, "ipc")
    rank = spec["rank"]
    attrs = [dict() for _ in range(size)]
    attrs[rank] = dict(spec["attrs"], **{"broker.pid": str(os.getpid())})
    gctune.tune(force=True)  # this process exists to run the broker
    bset = BrokerSet([rank], topo, attrs, spec["config"], alive_fd=spec.get("alive_fd"))
    signal.signal(signal.SIGTERM, lambda *_: bset.stop())
    bset.run()
    if bset.error is not None:
        print(f"fluxnb broker rank {rank}: {bset.error}", file=sys.stderr)
        return 1
    return bset.exit_code


if __name__ == "__main__":
    sys.exit(main())
