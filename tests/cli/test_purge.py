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



def _wait_kept(h, n: int, what: str) -> None:
    """Wait until the automatic purge has left ``n`` inactive jobs."""
    wait_for(lambda: h.rpc("job-manager.stats-get", {}).get()["inactive_jobs"] == n,
             max(3.0, purge.PERIOD * 3), what)


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
        _wait_kept(h, 3, "the automatic purge")
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
        _wait_kept(h, 0, "the age-limit purge")


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


def _job_dirs(h) -> tuple[list[str], list[str]]:
    """The directories under ``job`` in the KVS, and the empty ones."""
    from fluxnb import kvs
    dirs, empty = [], []
    todo = ["job"] if kvs.exists(h, "job") else []
    while todo:
        key = todo.pop()
        entries = kvs.listdir(h, key)
        dirs.append(key)
        if not entries:
            empty.append(key)
        todo.extend(f"{key}.{name}" for name, e in entries.items()
                    if e["type"] in ("dir", "dirref") and key.count(".") < 3)
    return dirs, empty


def test_the_purge_leaves_no_empty_directories_above_the_jobs():
    # issue 15: flux-core unlinks job.<dothex> alone, so the directories above, one
    # per millisecond or so of submissions, pile up empty without end
    with Instance(test_size=1, attrs={"job-manager.inactive-num-limit": "2"}) as inst, \
            Flux(inst.uri) as h:
        ids = []
        for _ in range(6):
            ids += _run(h, 2)
            time.sleep(0.01)  # later ids: other directories
        _wait_kept(h, 2, "the automatic purge")
        wait_for(lambda: not _in_kvs(h, ids[-3]), 2, "the KVS unlink")
        dirs, empty = _job_dirs(h)
        assert empty == []
        # job, job.xxxx, job.xxxx.xxxx, job.xxxx.xxxx.xxxx: at most one each per kept job
        assert len(dirs) <= 1 + 3 * 2, dirs
        assert [_in_kvs(h, i) for i in ids[-2:]] == [True, True]
        # a purged job's directory, made again by a new job there, is a full one
        ids += _run(h, 1)
        assert _in_kvs(h, ids[-1])
        assert h.rpc("job-list.list-id", {"id": ids[-1], "attrs": ["state"]}).get()["job"]["state"] == 64


def test_the_events_journal_keeps_inactive_jobs_compactly_and_until_purged():
    with Instance(test_size=1, attrs={"job-manager.inactive-num-limit": "3"}) as inst, \
            Flux(inst.uri) as h:
        ids = _run(h, 8)
        _wait_kept(h, 3, "the automatic purge")
        journal = inst._set.brokers[0].services["job-manager"].journal
        assert set(journal.jobs) == set(ids[-3:])
        # an inactive job's record is one string, not dozens of dicts ...
        assert all(type(e) is str for e in journal.jobs.values())
        # ... and the backlog is what it was
        from fluxnb.runtime.message import FLAG_STREAMING
        rpc = h.rpc("job-manager.events-journal", {"full": True}, flags=FLAG_STREAMING)
        backlog = {}
        while True:
            resp = rpc.get(timeout=10)
            rpc.reset()
            if resp["id"] == -1:
                break
            backlog[resp["id"]] = resp
        h.rpc("job-manager.events-journal-cancel", {"matchtag": rpc.matchtag}).get()
        assert set(backlog) == set(ids[-3:])
        for resp in backlog.values():
            names = [ev["name"] for ev in resp["events"]]
            assert names[0] == "submit" and names[-1] == "clean" and "alloc" in names
            assert all(set(ev) == {"timestamp", "name", "context"} for ev in resp["events"])
            assert resp["events"][0]["context"]["urgency"] == 16
            assert resp["jobspec"]["tasks"][0]["command"] == ["true"]
            assert "environment" not in resp["jobspec"]["attributes"]["system"]
            assert resp["R"]["execution"]["R_lite"]


def test_job_dirs_name_the_highest_directory_no_kept_job_needs():
    dirs = purge.JobDirs()
    kept = ["job.0000.0001.0002.0003", "job.0000.0001.0002.0004", "job.0000.0001.0005.0006",
            "job.0000.0007.0008.0009"]
    for d in kept:
        dirs.add(d)
    assert dirs.remove(kept[0]) is None                 # its sibling still needs job.0000.0001.0002
    assert dirs.remove(kept[1]) == "job.0000.0001.0002"
    assert dirs.remove(kept[3]) == "job.0000.0007"      # job.0000 holds job.0000.0001 still
    assert dirs.remove(kept[2]) == "job.0000"
    assert len(dirs) == 0                               # nothing left behind per purged job


def test_freed_memory_goes_back_after_a_burst_and_at_most_every_period(monkeypatch):
    # the automatic purge trims the C heap once a burst of purges ends, and during a
    # steady stream no more often than TRIM_PERIOD (a trim costs milliseconds)
    class Loop:
        def call_later(self, delay, fn):
            return None

    trims = []
    monkeypatch.setattr(purge, "_malloc_trim", lambda: trims.append(time.monotonic()))
    clock = [1000.0]
    monkeypatch.setattr(purge.time, "monotonic", lambda: clock[0])
    inactive = {}
    p = purge.Purger(Loop(), purge.UNLIMITED, 2, inactive, lambda ids: [inactive.pop(i) for i in ids])
    p._tick()
    assert trims == []                      # nothing purged, nothing to give back
    for burst in range(5):                  # a steady stream: something purged every tick
        for j in range(10):
            inactive[burst * 10 + j] = ("COMPLETED", True, 0.0)
        clock[0] += 1.0
        p._tick()
        assert len(inactive) == 2
    assert trims == []                      # 5 s into it: under TRIM_PERIOD
    clock[0] += purge.TRIM_PERIOD
    inactive[99] = ("COMPLETED", True, 0.0)
    p._tick()
    assert len(trims) == 1                  # a long stream: once a period
    clock[0] += 0.25
    inactive[100] = ("COMPLETED", True, 0.0)
    p._tick()
    assert len(trims) == 1                  # the stream goes on, the period has not passed
    clock[0] += 0.25
    p._tick()                               # nothing more to purge: the burst ended
    assert len(trims) == 2
    clock[0] += 0.25
    p._tick()
    assert len(trims) == 2                  # idle: no more trims
