"""Hostile input: each comes back at once as one clear error (errno and message as
flux-core's), nothing is stored or run for it, and the instance keeps serving.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import json
import os
import re
import subprocess
import time

import pytest

from fluxnb.runtime.message import FluxError
from tests.conftest import fluxnb_cmd

BOMB = "".join(  # 9 levels of 9 aliases: about 387 million strings once expanded
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"]
    + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")])


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode != 0, r.stdout
    text = r.stderr.strip()
    assert text and "\n" not in text and "Traceback" not in text, r.stderr
    return text


def _njobs(h) -> int:
    return len(h.rpc("job-list.list", {"max_entries": 0, "attrs": []}).get(timeout=10)["jobs"])


def _v1(**attrs) -> dict:
    js = {"version": 1,
          "resources": [{"type": "slot", "count": 1, "label": "task",
                         "with": [{"type": "core", "count": 1}]}],
          "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
          "attributes": {"system": {"duration": 0, **attrs}}}
    return js


def _deep(levels: int) -> dict:
    js = _v1()
    res = {"type": "core", "count": 1}
    for _ in range(levels):
        res = {"type": "slot", "count": 1, "label": "task", "with": [res]}
    js["resources"] = [res]
    return js


# -- unknown job ids --------------------------------------------------------------------
def test_wait_event_on_unknown_id_is_enoent_at_once(env):
    t = time.monotonic()
    r = fluxnb_cmd("job", "wait-event", "ƒ2", "start", env=env, timeout=30)
    assert _one_line_error(r).endswith("-job: job ƒ2 not found")  # flux-core's words
    assert time.monotonic() - t < 10


@pytest.mark.parametrize("argv", [["eventlog"], ["eventlog", "-p", "exec"],
                                  ["wait-event", "-p", "exec"], ["attach"], ["status"]])
def test_other_job_commands_on_unknown_id_fail_at_once(env, argv):
    extra = ["init"] if argv[0] == "wait-event" else []
    r = fluxnb_cmd("job", *argv, "ƒ2", *extra, env=env, timeout=30)
    text = _one_line_error(r)
    assert "ƒ2" in text and ("not found" in text or "No such job" in text), text


def test_api_event_wait_and_watch_on_unknown_id_raise_enoent(h):
    from fluxnb import job
    for call in (lambda: job.event_wait(h, 12345, "start"),
                 lambda: next(iter(job.event_watch(h, 12345))),
                 lambda: job.event_watch_async(h, 12345).get_event()):
        with pytest.raises(FluxError) as info:
            call()
        assert info.value.errno == errno.ENOENT and "not found" in str(info.value)


def test_watching_a_job_just_submitted_still_waits_for_it(h):
    from fluxnb import job
    jobid = job.submit(h, _v1())
    assert job.event_wait(h, jobid, "clean").name == "clean"


# -- jobspecs -------------------------------------------------------------------------
def test_yaml_alias_bomb_is_refused_and_nothing_stored(env, h, tmp_path):
    assert len(BOMB) < 600
    f = tmp_path / "bomb.yaml"
    f.write_text(BOMB)
    before = _njobs(h)
    r = fluxnb_cmd("job", "submit", str(f), env=env, timeout=30)
    assert "YAML aliases expand to more than" in _one_line_error(r)
    from fluxnb import job
    with pytest.raises(ValueError, match="alias bomb"):
        job.submit(h, BOMB)
    assert _njobs(h) == before


def test_deeply_nested_with_is_one_clear_error(env, h, tmp_path):
    f = tmp_path / "deep.json"
    text = '{"type":"core","count":1}'
    for _ in range(1000):
        text = '{"type":"slot","count":1,"label":"task","with":[' + text + "]}"
    f.write_text('{"version":1,"resources":[' + text + '],'
                 '"tasks":[{"command":["true"],"slot":"task","count":{"per_slot":1}}],'
                 '"attributes":{"system":{"duration":0}}}')
    r = fluxnb_cmd("job", "submit", str(f), env=env, timeout=30)
    assert "nested too deeply" in _one_line_error(r)
    from fluxnb import job
    with pytest.raises(FluxError) as info:  # 100 levels: the broker's validator says so
        job.submit(h, _deep(100))
    assert info.value.errno == errno.EINVAL
    assert "'with' nested more than 64 levels deep" in str(info.value)
    with pytest.raises(FluxError) as info:  # 1000: too deep to send (the broker's rule
        job.submit(h, _deep(1000))          # if a raised recursion limit lets it go)
    assert info.value.errno == errno.EINVAL
    assert re.search(r"nested too deeply|nested more than 64 levels deep", str(info.value))
    assert h.rpc("attr.get", {"name": "size"}).get(timeout=10)["value"]


def test_jobspec_over_10_mib_is_refused(h):
    from fluxnb import job
    before = _njobs(h)
    with pytest.raises(FluxError) as info:
        job.submit(h, _v1(environment={"BIG": "x" * (11 * 1024 * 1024)}))
    assert info.value.errno == errno.EINVAL and "larger than the limit of 10 MiB" in str(info.value)
    assert _njobs(h) == before


def test_binary_jobspec_file_is_one_line(env, tmp_path):
    f = tmp_path / "bin.yaml"
    f.write_bytes(bytes(range(256)) * 8)
    assert "binary data" in _one_line_error(fluxnb_cmd("job", "submit", str(f), env=env))
    f.write_bytes(bytes(range(1, 256)) * 8)  # no NUL, still not text
    assert "binary data" in _one_line_error(fluxnb_cmd("job", "submit", str(f), env=env))


def test_jobspec_version_99_is_refused(env, h, tmp_path):
    f = tmp_path / "v99.json"
    js = _v1()
    js["version"] = 99
    f.write_text(json.dumps(js))
    assert _one_line_error(fluxnb_cmd("job", "submit", str(f), env=env)).endswith(
        "-job: version: must be 1")


def test_negative_time_limit_is_one_line(env):
    text = _one_line_error(fluxnb_cmd("submit", "--time-limit=-5", "true", env=env))
    assert "duration must not be negative" in text  # flux-core's words


# -- --cc ------------------------------------------------------------------------------
def test_cc_over_the_limit_is_refused_at_once(env, h):
    before = _njobs(h)
    t = time.monotonic()
    r = fluxnb_cmd("submit", "--cc=1-100000000", "true", env=env, timeout=30)
    text = _one_line_error(r)
    assert "100000000 copies is more than the limit of 100000" in text
    assert time.monotonic() - t < 10 and _njobs(h) == before


def test_cc_copies_are_made_as_they_are_submitted():
    from fluxnb.cli.jobspec_args import CC_MAX, cc_list
    from fluxnb.cli.submit import Submitter
    args = argparse.Namespace(cc=f"1-{CC_MAX}", bcc=None)
    ids = cc_list(args)
    assert len(ids) == CC_MAX and not isinstance(ids, list)
    from fluxnb.cli.submit import build_parser
    xargs = build_parser("flux", "submit").parse_args([f"--cc=1-{CC_MAX}", "true"])
    t = time.monotonic()
    first = list(itertools.islice(Submitter(xargs, "flux", "submit").jobspecs([(xargs, [])]), 3))
    assert time.monotonic() - t < 1.0
    assert [label for label, _ in first] == ["cc=1: ", "cc=2: ", "cc=3: "]
    assert first[2][1].environment["FLUX_JOB_CC"] == "3"


# -- broker handlers -----------------------------------------------------------------------
@pytest.mark.parametrize("topic,payload,words", [
    ("job-manager.raise", {"id": -1, "type": "x", "severity": 0, "note": ""}, "'id' -1 is not a job id"),
    ("job-manager.raise", {"id": 2 ** 64, "type": "x", "severity": 0, "note": ""}, "is not a job id"),
    ("job-manager.cancel", {"id": "ƒ2"}, "'id' must be of type int"),
    ("job-list.list", {"max_entries": "x"}, "'max_entries' must be of type int, not str"),
    ("job-list.list", {"attrs": 5}, "'attrs' must be of type list"),
    ("job-list.list-id", {"id": True}, "'id' must be of type int, not bool"),
    ("job-manager.submit", {"jobspec": _v1(), "flags": "x"}, "'flags'"),
])
def test_malformed_payloads_are_eproto_with_a_message(h, topic, payload, words):
    with pytest.raises(FluxError) as info:
        h.rpc(topic, payload).get(timeout=10)
    assert info.value.errno == errno.EPROTO, info.value
    assert words in str(info.value) and "internal error" not in str(info.value)


def test_unknown_but_valid_job_id_is_enoent(h):
    with pytest.raises(FluxError) as info:
        h.rpc("job-manager.raise", {"id": 12345, "type": "x", "severity": 0, "note": ""}).get(timeout=10)
    assert info.value.errno == errno.ENOENT and "unknown job id" in str(info.value)


# -- modules, exec ---------------------------------------------------------------------------
def test_module_load_kvs_watch_is_file_exists(env):
    text = _one_line_error(fluxnb_cmd("module", "load", "kvs-watch", env=env))
    assert "load kvs-watch: File exists" in text  # flux-core: kvs-watch is loaded already


def test_exec_in_a_missing_directory_says_so_and_runs_in_tmp(env):
    r = fluxnb_cmd("exec", "-r", "0", "--dir=/nonexistent", "pwd", env=env, timeout=30)
    assert "command not found" not in r.stderr
    assert "Could not change dir to /nonexistent: No such file or directory" in r.stderr
    assert r.stdout.strip() == "/tmp" and r.returncode == 0


# -- a full disk -------------------------------------------------------------------------------
def test_full_disk_is_enospc_and_reads_go_on(tmp_path):
    """A state directory on a 4 MiB tmpfs filled up: commits fail with ENOSPC, reads work."""
    if os.getuid() != 0:
        pytest.fail("mounting a small tmpfs needs root (the test set-up runs as root)")
    from fluxnb import Flux, Instance
    from fluxnb import kvs as K
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    inst = None
    try:
        inst = Instance(test_size=1, statedir=str(mnt / "state")).start()
        with Flux(inst.uri) as h:
            K.put(h, "before", "kept")
            K.commit(h)
            filler = mnt / "filler"
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
            with pytest.raises(FluxError) as info:
                K.put(h, "big", "y" * 512 * 1024)
                K.commit(h)
            assert info.value.errno == errno.ENOSPC, info.value
            assert "No space left on device" in str(info.value)
            # still serving: reads, and the root did not move
            assert K.get(h, "before") == "kept"
            with pytest.raises(FluxError):
                K.get(h, "big")
            assert h.rpc("attr.get", {"name": "size"}).get(timeout=10)["value"] == "1"
            filler.unlink()
            K.put(h, "after", "room again")
            K.commit(h)
            assert K.get(h, "after") == "room again"
    finally:
        if inst is not None:
            inst.stop()
        subprocess.run(["umount", str(mnt)], check=False)


def test_no_handler_answers_a_malformed_payload_with_internal_error():
    """Every topic of rank 0, sent payloads of the wrong shape: each answer is an errno
    with a message (EPROTO, EINVAL, ENOENT...), never EIO "internal error", never silence."""
    from fluxnb import Flux, Instance
    skip = {"broker.shutdown", "broker.disconnect", "event.pub"}  # they act, on purpose
    wrong = {k: 7 for k in ("id", "name", "key", "namespace", "jobspec", "ops", "R", "ranks",
                            "targets", "cmd", "attrs", "max_entries", "states", "urgency",
                            "signum", "flags", "payload", "topic", "rank")}
    with Instance(test_size=2) as inst, Flux(inst.uri) as h:
        topics = sorted(t for t in inst._set.brokers[0].topics
                        if t not in skip and not t.startswith("module."))
        assert len(topics) > 50
        bad = []
        for payload in ([1, 2], wrong, "text"):
            for topic in topics:
                try:
                    h.rpc(topic, payload, nodeid=0).get(timeout=5)
                except FluxError as exc:
                    if exc.errno == errno.EIO or "internal error" in str(exc):
                        bad.append((topic, payload, str(exc)))
                except TimeoutError:
                    bad.append((topic, payload, "no answer"))
        assert bad == [], "\n".join(map(str, bad))
        assert h.rpc("attr.get", {"name": "size"}).get(timeout=10)["value"] == "2"
