"""`flux job purge` and the job manager's inactive limits, against flux-core 0.88.

flux-core (``flux start``, 5 finished jobs, one running) prints, in order:
``use --force to purge 0 of 5 inactive jobs``; with ``--num-limit=2``:
``use --force to purge 3 of 5 inactive jobs``, with ``-f``:
``purged 3 inactive jobs, 2 remaining``; an id: ``use --force to purge 1 of 2
inactive jobs`` then ``purged 1 inactive jobs, 1 remaining``; the same id again:
``flux-job: purge: id not found``; a running job: ``flux-job: purge: cannot purge
active job``; ``--num-limit=-3``: ``if set, num limit must be >= 0``;
``--batch=1000``: ``batch must be >= 1 and <= 100`` (all exit 1).
"""

from __future__ import annotations

import errno
import json
import time

import pytest

from fluxnb import Flux, Instance
from fluxnb.job import JobID, JobspecV1
from fluxnb.runtime.job import purge
from fluxnb.runtime.message import FluxError
from tests.conftest import fluxnb_cmd, wait_for


def _payload(run_duration: str = "0s") -> dict:
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test.run_duration", run_duration)
    return {"jobspec": json.loads(js.dumps()), "urgency": 16, "flags": 0}


def _run(h, n: int) -> list[int]:
    ids = [h.rpc("job-manager.submit", _payload()).get()["id"] for _ in range(n)]
    wait_for(lambda: h.rpc("job-manager.stats-get", {}).get()["active_jobs"] == 0, 15,
             "the jobs to finish")
    return ids


def _listed(h) -> set[int]:
    jobs = h.rpc("job-list.list", {"max_entries": 0, "attrs": [], "states": 64}).get()["jobs"]
    return {j["id"] for j in jobs}


def _in_kvs(h, jobid: int) -> bool:
    try:
        h.rpc("kvs.lookup", {"key": JobID(jobid).kvs + ".eventlog", "flags": 0}).get()
        return True
    except FluxError as exc:
        assert exc.errno == errno.ENOENT
        return False


@pytest.fixture(scope="module")
def inst():
    # unlimited, so that only `flux job purge` purges here
    with Instance(test_size=1, attrs={"job-manager.inactive-num-limit": "-1"}) as i:
        yield i


def job(inst, *args):
    return fluxnb_cmd("job", *args, env=inst.environ(0))


def test_flux_job_purge_as_flux_core(inst):
    with Flux(inst.uri) as h:
        ids = _run(h, 5)
        running = h.rpc("job-manager.submit", _payload("60s")).get()["id"]
        try:
            r = job(inst, "purge")
            assert (r.returncode, r.stdout) == (0, "use --force to purge 0 of 5 inactive jobs\n")
            r = job(inst, "purge", "--num-limit=2")
            assert r.stdout == "use --force to purge 3 of 5 inactive jobs\n"
            r = job(inst, "purge", "--num-limit=2", "-f")
            assert (r.returncode, r.stdout) == (0, "purged 3 inactive jobs, 2 remaining\n")
            # the oldest went: from job-manager, job-list and the KVS
            assert _listed(h) == set(ids[3:])
            assert [_in_kvs(h, i) for i in ids] == [False, False, False, True, True]
            last = JobID(ids[4]).f58
            assert job(inst, "purge", last).stdout == "use --force to purge 1 of 2 inactive jobs\n"
            assert job(inst, "purge", "-f", last).stdout == "purged 1 inactive jobs, 1 remaining\n"
            assert not _in_kvs(h, ids[4])
            for args, err in (((f"-f", last), "id not found"),
                              (("-f", JobID(running).f58), "cannot purge active job"),
                              (("-f", "--num-limit=-3"), "if set, num limit must be >= 0"),
                              (("-f", "--batch=1000", "--num-limit=0"), "batch must be >= 1 and <= 100")):
                r = job(inst, "purge", *args)
                assert (r.returncode, r.stderr) == (1, f"fluxnb-job: purge: {err}\n"), args
            r = job(inst, "purge", "--age-limit=0", "-f", "--batch=1")
            assert r.stdout == "purged 1 inactive jobs, 0 remaining\n"
            assert h.rpc("job-manager.stats-get", {}).get()["active_jobs"] == 1
        finally:
            h.rpc("job-manager.raise", {"id": running, "type": "cancel", "severity": 0, "note": ""}).get()


def test_purge_rpcs_answer_with_flux_core_errnos(inst):
    with Flux(inst.uri) as h:
        with pytest.raises(FluxError) as exc:
            h.rpc("job-manager.purge-id", {"id": 12345, "force": True}).get()
        assert (exc.value.errno, exc.value.errstr) == (errno.ENOENT, "id not found")
        with pytest.raises(FluxError) as exc:
            h.rpc("job-manager.purge", {"age_limit": -5.0, "num_limit": -1, "batch": 50,
                                        "force": True}).get()
        assert (exc.value.errno, exc.value.errstr) == (errno.EINVAL, "if set, age limit must be >= 0")
        # without force nothing goes, only the count is given
        _run(h, 2)
        before = h.rpc("job-manager.stats-get", {}).get()["inactive_jobs"]
        assert h.rpc("job-manager.purge", {"age_limit": -1, "num_limit": 0, "batch": 50,
                                           "force": False}).get() == {"count": before}
        assert h.rpc("job-manager.stats-get", {}).get()["inactive_jobs"] == before


def test_the_num_limit_purges_the_oldest_on_its_own():
    with Instance(test_size=1, attrs={"job-manager.inactive-num-limit": "3"}) as inst, \
            Flux(inst.uri) as h:
        ids = _run(h, 7)
        wait_for(lambda: h.rpc("job-manager.stats-get", {}).get()["inactive_jobs"] == 3,
                 purge.PERIOD * 3, "the automatic purge")
        assert _listed(h) == set(ids[4:])
        wait_for(lambda: not _in_kvs(h, ids[3]), 2, "the KVS unlink")
        assert _in_kvs(h, ids[4])


def test_the_age_limit_purges_on_its_own():
    with Instance(test_size=1, attrs={"job-manager.inactive-age-limit": "0.2s",
                                      "job-manager.inactive-num-limit": "-1"}) as inst, \
            Flux(inst.uri) as h:
        _run(h, 3)
        stats = h.rpc("job-manager.stats-get", {}).get()
        assert (stats["inactive_age_limit"], stats["inactive_num_limit"]) == (0.2, -1)
        wait_for(lambda: h.rpc("job-manager.stats-get", {}).get()["inactive_jobs"] == 0,
                 purge.PERIOD * 3, "the age-limit purge")


def test_default_limits_keep_memory_bounded():
    """flux-core keeps all inactive jobs unless configured; fluxnb keeps 1000."""
    assert purge.parse_limits({}) == (purge.UNLIMITED, purge.DEFAULT_NUM_LIMIT) == (-1, 1000)
    with Instance(test_size=1) as inst, Flux(inst.uri) as h:
        assert h.rpc("job-manager.stats-get", {}).get()["inactive_num_limit"] == 1000


def test_bad_limits_are_named():
    with pytest.raises(ValueError, match="inactive-age-limit: invalid FSD"):
        purge.parse_limits({"job-manager.inactive-age-limit": "soon"})
    with pytest.raises(ValueError, match="inactive-num-limit: must be >= 0"):
        purge.parse_limits({"job-manager.inactive-num-limit": "-7"})


def test_select_oldest_first_as_flux_core():
    jobs = {i: ("COMPLETED", True, float(i)) for i in range(1, 6)}
    assert purge.select(jobs, purge.UNLIMITED, 2) == [1, 2, 3]
    assert purge.select(jobs, purge.UNLIMITED, 2, most=2) == [1, 2]
    assert purge.select(jobs, 2.5, purge.UNLIMITED, now=6.0) == [1, 2, 3]
    assert purge.select(jobs, purge.UNLIMITED, purge.UNLIMITED) == []
    # either limit is enough
    assert purge.select(jobs, 4.5, 3, now=6.0) == [1, 2]
