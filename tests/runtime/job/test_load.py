"""Load: 10,000 test-exec jobs submitted at once are all run and listed, none lost."""

import json
import resource

from fluxnb import Flux, Instance
from fluxnb.job import JobspecV1


def test_ten_thousand_jobs_none_lost_memory_bounded():
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test.run_duration", "0s")
    payload = {"jobspec": json.loads(js.dumps()), "urgency": 16, "flags": 0}
    n = 10_000
    # every job kept, so that all can be listed (by default the oldest are purged)
    with Instance(test_size=4, attrs={"job-manager.inactive-num-limit": "-1"}) as inst, \
            Flux(inst.uri) as h:
        h.event_subscribe("job-state")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ids = set()
        for start in range(0, n, 1000):  # submit in waves of 1000 in flight
            futures = [h.rpc("job-manager.submit", payload, nodeid=0) for _ in range(1000)]
            ids |= {f.get()["id"] for f in futures}
        assert len(ids) == n  # unique ids
        done = set()
        while len(done) < n:
            ev = h.event_recv("job-state", timeout=120)
            done |= {j for j, state, _ in ev.json["transitions"] if state == "INACTIVE"}
        assert done == ids
        listed = h.rpc("job-list.list", {"max_entries": 0, "attrs": ["result"], "states": 64},
                       nodeid=0).get()["jobs"]
        assert {j["id"] for j in listed} == ids
        assert all(j["result"] == 1 for j in listed)  # COMPLETED
        stats = h.rpc("job-list.stats", {}, nodeid=0).get()
        assert stats["successful"] == n and stats["job_states"]["inactive"] == n
        # the job manager keeps only active jobs; history lives in job-list and the KVS
        assert h.rpc("job-manager.getinfo", {}, nodeid=0).get()["active"] == 0
        grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        assert grown_mib < 400, f"memory grew {grown_mib:.0f} MiB for {n} jobs"
