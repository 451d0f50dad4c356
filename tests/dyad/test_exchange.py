"""A producer job on rank 0 and a consumer job on rank 1 exchange 1,000 files.

Placement is deterministic whatever the scheduler's policy: the instance has two
ranks of one core each; with rank 0 drained, the consumer job can only start on
rank 1; once it runs, rank 0 is undrained and the producer job can only go there.
Each task reports its rank and the test checks it. The consumer starts first and
the producer also holds its first file until the consumer has said (a KVS key)
that it is consuming, so the consumer is waiting before any file exists.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from fluxnb import Flux
from fluxnb.job import JobspecV1, event_wait, result, submit

TASKS = str(Path(__file__).with_name("tasks.py"))
N = 1000


def _job(h, role, out, env):
    js = JobspecV1.from_command([sys.executable, TASKS, role, str(N), out], environment=env)
    return submit(h, js)


def test_thousand_files(dyad_instance, namespace, tmp_path):
    env = dict(os.environ, DYAD_KVS_NAMESPACE=namespace, DYAD_DTL_MODE="FLUX_RPC",
               PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("DYAD_PATH_PRODUCER", None)
    env.pop("DYAD_PATH_CONSUMER", None)
    prod_out, cons_out = str(tmp_path / "prod.json"), str(tmp_path / "cons.json")
    with Flux(dyad_instance.uri) as h:
        h.rpc("resource.drain", {"targets": "0", "reason": "consumer goes to rank 1"}, nodeid=0).get()
        try:
            consumer = _job(h, "consumer", cons_out, env)
            event_wait(h, consumer, "start")
        finally:
            h.rpc("resource.undrain", {"targets": "0"}, nodeid=0).get()
        producer = _job(h, "producer", prod_out, env)
        pres, cres = result(h, producer), result(h, consumer)
    assert (pres["result"], cres["result"]) == ("COMPLETED", "COMPLETED"), (pres, cres)
    prod, cons = json.load(open(prod_out)), json.load(open(cons_out))
    assert (prod["rank"], cons["rank"]) == (0, 1)
    assert cons["bad"] == []
    assert cons["leftovers"] == []
    assert cons["fetched"] == N                     # every file crossed ranks
    assert len(cons["opened"]) == N
    # no file was opened before its producer closed it
    assert all(cons["opened"][i] >= prod["closed"][i] for i in prod["closed"])
