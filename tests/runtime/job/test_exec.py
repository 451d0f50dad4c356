"""Jobs run as real processes across the ranks of an instance, with Flux's task environment."""

from __future__ import annotations

import os

import pytest

from fluxnb import Flux, Instance
from fluxnb.job import JobID, JobspecV1, eventlog_entries, result, submit


@pytest.fixture(scope="module")
def inst():
    with Instance(test_size=4, cores_per_node=2) as i:
        yield i


def spec(cmd, **kw):
    js = JobspecV1.from_command(cmd, **kw)
    js.environment = dict(os.environ)
    return js


def outputs(h, jobid):
    lines = {}
    for ev in eventlog_entries(h, jobid, "output", watch=False):
        if ev.name == "data" and "data" in ev.context:
            lines.setdefault(ev.context["stream"], []).append((int(ev.context["rank"]), ev.context["data"]))
    return lines


def test_all_nodes_are_schedulable_right_after_start(inst):
    with Flux(inst.uri) as h:
        status = h.rpc("sched.resource-status", {}, nodeid=0).get()
        assert status["down"] == ""
        jobid = submit(h, spec(["true"], num_nodes=4, num_tasks=4))
        assert result(h, jobid)["result"] == "COMPLETED"
        assert result(h, jobid)["nnodes"] == 4


def test_task_environment_on_every_rank(inst):
    script = ('echo "$FLUX_TASK_RANK $FLUX_TASK_LOCAL_ID $FLUX_JOB_SIZE $FLUX_JOB_NNODES '
              '$FLUX_JOB_ID $FLUX_URI $FLUX_KVS_NAMESPACE"; test -d "$FLUX_JOB_TMPDIR"')
    with Flux(inst.uri) as h:
        jobid = submit(h, spec(["sh", "-c", script], num_nodes=2, num_tasks=4))
        info = result(h, jobid)
        assert info["result"] == "COMPLETED", info
        rows = sorted(outputs(h, jobid)["stdout"])
        assert [r for r, _ in rows] == [0, 1, 2, 3]
        ranks = [int(r) for r in info["ranks"].replace("-", ",").split(",")]
        for taskrank, line in rows:
            f = line.split()
            assert f[0] == str(taskrank)
            assert f[1] == str(taskrank % 2)          # two tasks per node, block layout
            assert f[2:4] == ["4", "2"]
            assert JobID(f[4]) == jobid
            broker_rank = ranks[0] if taskrank < 2 else ranks[-1]
            assert f[5] == inst.rank_uri(broker_rank)  # each task talks to its own broker
            assert f[6] == f"job-{int(jobid)}"


def test_exit_code_and_stderr(inst):
    with Flux(inst.uri) as h:
        jobid = submit(h, spec(["sh", "-c", "echo oops >&2; exit 3"]))
        info = result(h, jobid)
        assert (info["result"], info["returncode"]) == ("FAILED", 3)
        assert outputs(h, jobid)["stderr"] == [(0, "oops\n")]


def test_test_exec_starts_no_process(inst, tmp_path):
    marker = tmp_path / "ran"
    js = spec(["touch", str(marker)])
    js.setattr("system.exec.test.run_duration", "0.05s")
    with Flux(inst.uri) as h:
        info = result(h, submit(h, js))
        assert info["result"] == "COMPLETED"
        assert info["t_cleanup"] - info["t_run"] >= 0.05
        assert not marker.exists()


def test_output_to_file_with_id_template(inst, tmp_path):
    js = spec(["echo", "to a file"])
    js.stdout = str(tmp_path / "out-{{id}}.txt")
    with Flux(inst.uri) as h:
        jobid = submit(h, js)
        assert result(h, jobid)["result"] == "COMPLETED"
        assert (tmp_path / f"out-{JobID(jobid).f58}.txt").read_text() == "to a file\n"


def test_guest_namespace_is_archived_and_removed(inst):
    with Flux(inst.uri) as h:
        jobid = submit(h, spec(["true"]))
        result(h, jobid)
        names = [ns["namespace"] for ns in h.rpc("kvs.namespace-list", {}, nodeid=0).get()["namespaces"]]
        assert f"job-{int(jobid)}" not in names
        execlog = [e.name for e in eventlog_entries(h, jobid, "exec", watch=False)]
        assert execlog[0] == "init" and execlog[-1] == "done" and "shell.start" in execlog


def test_ingest_keeps_the_submitted_text_and_validates_every_copy(inst):
    # job-ingest.submit stores the jobspec text it was sent (flux job info shows it);
    # the copies of one text (a --cc range) are all accepted, and a different,
    # invalid text sent after them is still refused
    import base64
    import errno
    import json

    from fluxnb import FluxError
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test.run_duration", "0s")
    text = js.dumps()
    with Flux(inst.uri) as h:
        ids = [h.rpc("job-ingest.submit", {"J": text, "urgency": 16, "flags": 0}).get()["id"]
               for _ in range(3)]
        for jobid in ids:
            key = f"{JobID(jobid).kvs}.jobspec"
            raw = h.rpc("kvs.lookup", {"key": key}).get()["val"]["data"]
            assert base64.b64decode(raw).decode() == text
        bad = json.loads(text)
        bad["tasks"][0]["count"] = {"per_slot": 0}
        with pytest.raises(FluxError) as exc:
            h.rpc("job-ingest.submit", {"J": json.dumps(bad), "urgency": 16, "flags": 0}).get()
        assert exc.value.errno == errno.EINVAL and "per_slot" in str(exc.value)


def test_job_tmpdir_goes_when_the_job_ends_whatever_it_holds(inst):
    # FLUX_JOB_TMPDIR exists while the tasks run and is removed after the job,
    # empty or not (flux-core's shell removes it with what the tasks left in it)
    from tests.conftest import wait_for
    script = 'echo "$FLUX_JOB_TMPDIR"; mkdir "$FLUX_JOB_TMPDIR/sub"; echo x > "$FLUX_JOB_TMPDIR/sub/f"'
    with Flux(inst.uri) as h:
        full = submit(h, spec(["sh", "-c", script]))
        empty = submit(h, spec(["sh", "-c", 'echo "$FLUX_JOB_TMPDIR"']))
        dirs = []
        for jobid in (full, empty):
            assert result(h, jobid)["result"] == "COMPLETED"
            dirs.append(outputs(h, jobid)["stdout"][0][1].strip())
    assert all(os.path.basename(d).startswith("jobtmp-") for d in dirs), dirs
    wait_for(lambda: not any(os.path.exists(d) for d in dirs), what="job tmpdirs removed")


def test_like_jobs_on_the_same_cores_lay_out_by_their_own_jobspec():
    """job-exec lays out a shape of request once; the shell's per-resource option and
    the task count are part of the shape (the same R, different layouts)."""
    with Instance(test_size=1, cores_per_node=2) as one, Flux(one.uri) as h:
        counts = []
        for per_node in (False, True, False):
            js = spec(["sh", "-c", "echo $FLUX_TASK_RANK"], num_nodes=1, num_tasks=2)
            if per_node:
                js.setattr("system.shell.options.per-resource", {"type": "node"})
            jobid = submit(h, js)
            assert result(h, jobid)["result"] == "COMPLETED"
            counts.append(sorted(int(line) for _, line in outputs(h, jobid)["stdout"]))
        js = spec(["sh", "-c", "echo $FLUX_TASK_RANK"], num_nodes=1, num_tasks=1, cores_per_task=2)
        jobid = submit(h, js)
        assert result(h, jobid)["result"] == "COMPLETED"
        counts.append(sorted(int(line) for _, line in outputs(h, jobid)["stdout"]))
    assert counts == [[0, 1], [0], [0, 1], [0]]


def test_job_list_gives_each_job_its_own_R_fields_on_the_same_cores():
    """job-list reads ranks, nodelist, ncores... once per shape of R; a job's
    expiration is its own (a time limit, then none, on the same core)."""
    from fluxnb.job import job_list_id
    with Instance(test_size=1, cores_per_node=2) as one, Flux(one.uri) as h:
        infos = []
        for limit, cores in ((60.0, 1), (None, 1), (None, 2)):
            js = spec(["true"], num_nodes=1, num_tasks=1, cores_per_task=cores)
            if limit:
                js.duration = limit
            jobid = submit(h, js)
            assert result(h, jobid)["result"] == "COMPLETED"
            infos.append(job_list_id(h, jobid).get()["job"])
    assert [i.get("ncores") for i in infos] == [1, 1, 2]
    assert [i["ranks"] for i in infos] == ["0", "0", "0"]
    assert infos[0]["expiration"] - infos[0]["t_run"] == pytest.approx(60, abs=5)
    assert infos[1].get("expiration", 0.0) == 0.0


def test_every_task_ends_both_streams_once_in_the_output_eventlog(inst):
    """As flux's shell: ``output`` holds the header, the data, then one eof per task
    and stream (job-exec appends them with its complete event when the shell has no
    output still on its way to the KVS)."""
    with Flux(inst.uri) as h:
        for script in ("true", "echo out; echo err >&2"):
            jobid = submit(h, spec(["sh", "-c", script], num_tasks=2, num_nodes=2))
            assert result(h, jobid)["result"] == "COMPLETED"
            evs = list(eventlog_entries(h, jobid, "output", watch=False))
            assert evs[0].name == "header"
            eofs = [(e.context["rank"], e.context["stream"]) for e in evs if e.context.get("eof")]
            assert sorted(eofs) == [("0", "stderr"), ("0", "stdout"), ("1", "stderr"), ("1", "stdout")]
            data = [i for i, e in enumerate(evs) if e.name == "data" and "data" in e.context]
            for rank in ("0", "1"):
                for stream in ("stdout", "stderr"):
                    mine = [i for i in data if evs[i].context["rank"] == rank
                            and evs[i].context["stream"] == stream]
                    end = next(i for i, e in enumerate(evs) if e.context.get("eof")
                               and e.context["rank"] == rank and e.context["stream"] == stream)
                    assert all(i < end for i in mine)
                    assert len(mine) == (0 if script == "true" else 1)


def test_output_goes_to_the_eventlog_a_line_at_a_time(inst):
    """As flux's shell (``output.stdout.buffer.type=line``, its default): a line the task
    writes in pieces is one data event, a UTF-8 character split between two writes is
    whole, and a last line without a newline still comes, at the task's end."""
    script = ("printf 'a'; sleep 0.1; printf 'b\\n'; printf '\\303'; sleep 0.1; printf '\\251\\n'; "
              "printf 'no newline'")
    with Flux(inst.uri) as h:
        jobid = submit(h, spec(["sh", "-c", script]))
        assert result(h, jobid)["result"] == "COMPLETED"
        data = [ev.context["data"] for ev in eventlog_entries(h, jobid, "output", watch=False)
                if ev.name == "data" and ev.context.get("stream") == "stdout" and "data" in ev.context]
    assert data == ["ab\n", "\u00e9\n", "no newline"]


def test_a_job_signaled_before_its_shells_start_runs_no_task(inst, tmp_path):
    """job-exec creates the guest namespace and commits the output header before it
    asks the shells to run the tasks; a kill that comes meanwhile (a cancel, or the
    time limit) is not lost: the tasks never start and the job finishes as killed."""
    import concurrent.futures
    import errno

    from fluxnb.runtime.message import FLAG_STREAMING
    marker = tmp_path / "ran"
    jobid = 0x7F00_0000_0000_0001  # an id job-exec has not seen; rank 0's cores
    R = {"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0"}}],
                                     "starttime": 0.0, "expiration": 0.0, "nodelist": ["x"]}}
    js = spec(["touch", str(marker)]).jobspec
    broker = inst._set.brokers[0]
    replies: list = []
    ended: concurrent.futures.Future = concurrent.futures.Future()

    def on_reply(msg):
        if msg.errnum:
            ended.set_result(msg.errnum)
        else:
            replies.append((msg.json["type"], msg.json["data"]))

    def start_then_kill():  # in one pass of the loop: before the namespace is made
        broker.rpc("job-exec.start", {"id": jobid, "R": R, "jobspec": js}, nodeid=0,
                   flags=FLAG_STREAMING, callback=on_reply)
        broker.rpc("job-exec.kill", {"id": jobid, "signum": 15}, nodeid=0)

    broker.loop.call_soon_threadsafe(start_then_kill)
    assert ended.result(timeout=10) == errno.ENODATA
    assert [k for k, _ in replies] == ["finish", "release"]
    assert replies[0][1]["status"] == (128 + 15) << 8
    assert not marker.exists()
