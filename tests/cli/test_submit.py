"""`flux run` and `flux submit`: flux-run(1)/flux-submit(1) options, output and exit codes,
and `flux job attach` messages (flux-job.c)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from fluxnb.job import JobID


def flux(env, *args, input=None, timeout=60, cwd=None, stdin=None):
    """Run the ``flux`` shim of the instance, as a user in a shell inside it would."""
    kw = {"input": input} if input is not None else {"stdin": stdin or subprocess.DEVNULL}
    return subprocess.run(["flux", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, **kw)


def dry_run(env, *args, **kw):
    r = flux(env, "run", "--dry-run", *args, **kw)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def one_line_error(r, code=1):
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr.strip()


# -- flux run: output and exit codes ---------------------------------------------------------
def test_run_prints_the_job_output(env):
    r = flux(env, "run", "echo", "hello")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hello\n", "")


def test_run_label_io_prefixes_each_line_with_the_task_rank(env):
    r = flux(env, "run", "-n4", "--label-io", "printenv", "FLUX_TASK_RANK")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: 0", "1: 1", "2: 2", "3: 3"]


def test_run_keeps_stderr_apart(env):
    r = flux(env, "run", "sh", "-c", "echo out; echo err >&2")
    assert (r.stdout, r.stderr) == ("out\n", "err\n")


def test_run_false_reports_the_exit_code(env):
    r = flux(env, "run", "/bin/false")
    assert r.returncode == 1
    assert r.stderr == "flux-job: task(s) exited with exit code 1\n"


def test_run_exits_with_the_task_exit_code(env):
    r = flux(env, "run", "sh", "-c", "exit 3")
    assert r.returncode == 3
    assert "flux-job: task(s) exited with exit code 3" in r.stderr


def test_run_signaled_task_exits_128_plus_signal(env):
    r = flux(env, "run", "sh", "-c", "kill -TERM $$")
    assert r.returncode == 128 + 15
    assert re.search(r"^flux-job: .*Terminated$", r.stderr, re.M), r.stderr


def test_run_missing_command_is_a_job_exception(env):
    r = flux(env, "run", "nosuchcommand-xyz")
    assert r.returncode == 127  # as flux-core: the shell reports "not found" as 127
    assert re.search(r"^\d+\.\d{3}s: job\.exception type=exec severity=0 .*nosuchcommand-xyz",
                     r.stderr, re.M), r.stderr


def test_run_forwards_stdin(env):
    r = flux(env, "run", "cat", input="hi\nthere\n")
    assert (r.returncode, r.stdout) == (0, "hi\nthere\n")


def test_run_forwards_stdin_to_every_task(env):
    r = flux(env, "run", "-n2", "--label-io", "cat", input="x\n")
    assert sorted(r.stdout.splitlines()) == ["0: x", "1: x"]


def test_run_with_empty_stdin_sends_eof(env):
    r = flux(env, "run", "cat", stdin=subprocess.DEVNULL, timeout=30)
    assert (r.returncode, r.stdout) == (0, "")


def test_run_time_limit_ends_the_job_with_a_timeout(env, h):
    from fluxnb.job import result
    t0 = time.monotonic()
    r = flux(env, "run", "-v", "-t", "1s", "sleep", "10")
    assert time.monotonic() - t0 < 6
    assert r.returncode != 0
    assert "job.exception type=timeout severity=0" in r.stderr
    jobid = JobID(re.search(r"^jobid: (\S+)$", r.stderr, re.M).group(1))
    assert result(h, jobid)["result"] == "TIMEOUT"


def test_run_verbose_prints_jobid_and_events(env):
    r = flux(env, "run", "-vv", "true")
    assert r.returncode == 0
    assert re.match(r"jobid: ƒ\w+\n", r.stderr)
    assert re.search(r"^\d+\.\d{3}s: job\.start$", r.stderr, re.M)
    assert re.search(r'^\d+\.\d{3}s: job\.finish \{"status":0\}$', r.stderr, re.M)


def test_run_in_current_directory_by_default(env, tmp_path):
    assert flux(env, "run", "pwd", cwd=tmp_path).stdout.strip() == str(tmp_path)
    assert flux(env, "run", f"--cwd={tmp_path}", "pwd", cwd="/").stdout.strip() == str(tmp_path)


def test_run_environment_rules(env):
    env2 = dict(env, FOO_A="1", FOO_B="2")
    assert flux(env2, "run", "printenv", "FOO_A").stdout == "1\n"
    assert flux(env2, "run", "--env=FOO_A=x$FOO_B", "printenv", "FOO_A").stdout == "x2\n"
    assert flux(env2, "run", "--env-remove=FOO_*", "printenv", "FOO_A").returncode == 1
    assert flux(env2, "run", "--env=-FOO_A", "printenv", "FOO_B").stdout == "2\n"
    assert flux(env2, "run", "--env=-*", "--env=FOO_B", "--env=PATH", "printenv",
                "FOO_B").stdout == "2\n"


def test_run_output_to_file(env, tmp_path):
    r = flux(env, "run", f"--output={tmp_path}/out.txt", "echo", "to-file")
    assert (r.returncode, r.stdout) == (0, "")
    assert (tmp_path / "out.txt").read_text() == "to-file\n"


# -- flux job attach ----------------------------------------------------------------------------
def test_job_attach_prints_output_and_exit_code(env):
    jobid = flux(env, "submit", "sh", "-c", "echo attached; exit 2").stdout.strip()
    r = flux(env, "job", "attach", jobid)
    assert (r.returncode, r.stdout) == (2, "attached\n")
    assert "flux-job: task(s) exited with exit code 2" in r.stderr


def test_job_attach_unknown_job(env):
    r = flux(env, "job", "attach", JobID(12345678).f58)
    assert r.returncode == 1
    assert f"Failed to attach to {JobID(12345678).f58}: No such job" in r.stderr


def test_attach_api_returns_exit_code(env, h, capfd):
    from fluxnb.cli.attach import attach
    from fluxnb.job import JobspecV1, submit
    jobid = submit(h, JobspecV1.from_command(["sh", "-c", "echo api; exit 4"]))
    assert attach(h, jobid, stdin=False) == 4
    out, err = capfd.readouterr()
    assert out == "api\n"
    assert "flux-job: task(s) exited with exit code 4" in err


# -- flux submit ------------------------------------------------------------------------------
def test_submit_prints_an_f58_jobid(env, h):
    from fluxnb.job import result
    r = flux(env, "submit", "true")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"ƒ\w+\n", r.stdout)
    jobid = JobID(r.stdout.strip())
    assert result(h, jobid)["result"] == "COMPLETED"


def test_submit_quiet_prints_nothing(env):
    r = flux(env, "submit", "--quiet", "true")
    assert (r.returncode, r.stdout) == (0, "")


def test_submit_cc_submits_copies_with_cc_substituted(env, tmp_path):
    r = flux(env, "submit", "--wait", "--cc=1-3", f"--output={tmp_path}/cc{{cc}}.out",
             "sh", "-c", "echo {cc} $FLUX_JOB_CC")
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    assert len(ids) == 3 and len(set(ids)) == 3
    assert all(JobID(i) for i in ids)
    for i in (1, 2, 3):
        assert (tmp_path / f"cc{i}.out").read_text() == f"{i} {i}\n"


def test_submit_bcc_does_not_set_flux_job_cc(env):
    r = flux(env, "submit", "--watch", "--bcc=1-2", "sh", "-c", "echo {cc}:$FLUX_JOB_CC")
    assert sorted(r.stdout.splitlines()[2:]) == ["1:", "2:"]


def test_submit_output_template_expanded_by_the_shell(env, tmp_path):
    r = flux(env, "submit", "--wait", f"--output={tmp_path}/flux-{{{{id}}}}.out", "echo",
             "templated")
    jobid = JobID(r.stdout.strip())
    assert (tmp_path / f"flux-{jobid.f58}.out").read_text() == "templated\n"


def test_submit_does_not_forward_stdin(env):
    r = flux(env, "submit", "--watch", "cat", input="not for the job\n", timeout=30)
    assert r.returncode == 0
    assert "not for the job" not in r.stdout


def test_submit_wait_exits_with_largest_exit_code(env):
    r = flux(env, "submit", "--wait", "--cc=1-3", "sh", "-c", "exit {cc}")
    assert r.returncode == 3
    assert len(r.stdout.split()) == 3


def test_submit_wait_reports_exceptions(env):
    r = flux(env, "submit", "--wait", "nosuchcommand-xyz")
    assert r.returncode == 127  # flux-core 0.88 exits 127 here too
    assert "job.exception: type=exec severity=0" in r.stderr


def test_submit_watch_copies_output(env):
    r = flux(env, "submit", "--watch", "echo", "watched")
    lines = r.stdout.splitlines()
    assert r.returncode == 0
    assert re.fullmatch(r"ƒ\w+", lines[0]) and lines[1:] == ["watched"]


def test_submit_urgency_hold(env, h):
    from fluxnb.job import cancel, get_job
    r = flux(env, "submit", "--urgency=hold", "true")
    jobid = JobID(r.stdout.strip())
    info = get_job(h, jobid)
    assert info["urgency"] == 0 and info["state"] in ("PRIORITY", "SCHED", "DEPEND")
    cancel(h, jobid)


def test_submit_dependency_afterok(env, h):
    from fluxnb.job import result
    first = flux(env, "submit", "sleep", "0.3").stdout.strip()
    second = flux(env, "submit", f"--dependency=afterok:{first}", "true").stdout.strip()
    r1, r2 = result(h, JobID(first)), result(h, JobID(second))
    assert r2["result"] == "COMPLETED"
    assert r2["t_run"] >= r1["t_cleanup"] - 0.01


def test_submit_test_exec_mode_throughput(env):
    t0 = time.monotonic()
    r = flux(env, "submit", "--wait", "--cc=1-50", "--setattr=system.exec.test.run_duration=0.01s",
             "true")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 50
    assert time.monotonic() - t0 < 20


def test_submit_progress_summary_when_not_a_tty(env):
    r = flux(env, "submit", "--progress", "--wait", "--cc=1-3", "true")
    last = r.stdout.splitlines()[-1]
    assert re.match(r"PD:0 +R:0 +CD:3 +F:0 +│█+│100\.0% ", last), last


# -- jobspec (--dry-run) ----------------------------------------------------------------------------
def test_dry_run_tasks_and_resources(env):
    js = dry_run(env, "-n4", "-c2", "hostname")
    assert js["version"] == 1
    assert js["tasks"] == [{"command": ["hostname"], "slot": "task", "count": {"per_slot": 1}}]
    assert js["resources"] == [{"type": "slot", "count": 4, "label": "task",
                                "with": [{"type": "core", "count": 2}]}]


def test_dry_run_nodes_alone_means_one_exclusive_task_per_node(env):
    js = dry_run(env, "-N2", "hostname")
    node = js["resources"][0]
    assert (node["type"], node["count"], node.get("exclusive")) == ("node", 2, True)


def test_dry_run_gpus(env):
    js = dry_run(env, "-n1", "-g1", "true")
    assert {"type": "gpu", "count": 1} in js["resources"][0]["with"]


def test_dry_run_time_limit_fsd_or_minutes(env):
    assert dry_run(env, "-t", "5s", "true")["attributes"]["system"]["duration"] == 5
    assert dry_run(env, "-t", "1.5m", "true")["attributes"]["system"]["duration"] == 90
    assert dry_run(env, "-t", "2", "true")["attributes"]["system"]["duration"] == 120


def test_dry_run_environment_and_cwd(env, tmp_path):
    js = dry_run(dict(env, SUBMIT_TEST_VAR="yes"), "true", cwd=tmp_path)
    system = js["attributes"]["system"]
    assert system["environment"]["SUBMIT_TEST_VAR"] == "yes"
    assert system["cwd"] == str(tmp_path)
    js = dry_run(dict(env, SUBMIT_TEST_VAR="yes"), "--env-remove=SUBMIT_*", "true")
    assert "SUBMIT_TEST_VAR" not in js["attributes"]["system"]["environment"]


def test_dry_run_attributes_and_shell_options(env):
    js = dry_run(env, "--job-name=myjob", "--setattr=user.tag=x", "--setattr=foo=3",
                 "--setattr=system.exec.test.run_duration=0.01s", "--setopt=verbose",
                 "--setopt=cpu-affinity=off", "--output=flux-{{id}}.out", "true")
    system = js["attributes"]["system"]
    assert system["job"]["name"] == "myjob"
    assert js["attributes"]["user"]["tag"] == "x"
    assert system["foo"] == 3
    assert system["exec"]["test"]["run_duration"] == "0.01s"
    assert system["shell"]["options"]["verbose"] == 1
    assert system["shell"]["options"]["cpu-affinity"] == "off"
    assert system["shell"]["options"]["output"]["stdout"] == {"type": "file",
                                                              "path": "flux-{{id}}.out"}


def test_dry_run_dependency(env):
    js = dry_run(env, "--dependency=afterok:ƒ2sX", "true")
    assert js["attributes"]["system"]["dependencies"] == [{"scheme": "afterok", "value": "ƒ2sX"}]


def test_run_does_not_ask_for_stdin_in_dry_run(env):
    js = dry_run(env, "true")
    assert "stdin" not in js["attributes"]["system"].get("shell", {}).get("options", {})


# -- mistakes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cmd", ["run", "submit", "bulksubmit"])
def test_unknown_option_is_a_usage_error(env, cmd):
    r = flux(env, cmd, "--no-such-option", "true")
    assert r.returncode == 2
    assert r.stderr.startswith("usage:") and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--time-limit=abc"], "--time-limit: invalid Flux Standard Duration 'abc'"),
    (["-n", "0"], "--ntasks"),
    (["-n", "four"], "--ntasks: invalid int value 'four'"),
    (["-c", "0"], "--cores-per-task"),
    (["--urgency=99"], "--urgency"),
    (["--dependency=nonsense"], "--dependency"),
    (["--flags=bogus"], "--flags: Unknown flag bogus"),
])
def test_bad_values_are_one_clear_line(env, args, message):
    for cmd in ("run", "submit"):
        err = one_line_error(flux(env, cmd, *args, "true"))
        assert err.startswith(f"flux-{cmd}: ") and message in err, err


def test_missing_command(env):
    err = one_line_error(flux(env, "submit"))
    assert err == "flux-submit: job command and arguments are missing"


def test_unsatisfiable_request_is_reported(env):
    # as flux without the feasibility validator: the scheduler raises an alloc exception
    err = one_line_error(flux(env, "run", "-n", "1000", "true"))
    assert re.fullmatch(r"\d+\.\d{3}s: job\.exception type=alloc severity=0 .+", err), err


def test_run_two_ctrl_c_within_2s_cancel_the_job(env):
    import signal
    p = subprocess.Popen(["flux", "run", "sleep", "30"], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert "flux-job: one more ctrl-C within 2s to cancel or ctrl-Z to detach" in err
    assert "job.exception type=cancel severity=0 interrupted by ctrl-C" in err
    assert p.returncode != 0
