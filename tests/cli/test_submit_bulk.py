"""`flux bulksubmit` (flux-bulksubmit(1)): inputs from stdin or ::: lists, substitution,
--dry-run, --cc, --wait and --watch."""

from __future__ import annotations

import re

import pytest

from fluxnb.job import JobID
from tests.cli.test_submit import flux


def dry(env, *args, input=None):
    r = flux(env, "bulksubmit", "--dry-run", *args, input=input)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_inputs_from_command_line(env):
    r = flux(env, "bulksubmit", "--watch", "echo", "{}", ":::", "a", "b", "c")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(JobID(x) for x in lines[:3])
    assert sorted(lines[3:]) == ["a", "b", "c"]


def test_inputs_from_stdin_lines(env):
    r = flux(env, "bulksubmit", "--watch", "echo", "in:{}", input="x\ny\n")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()[2:]) == ["in:x", "in:y"]


def test_cartesian_product_of_input_lists(env):
    assert dry(env, "echo", "{0}", "{1}", ":::", "a", "b", ":::", "1", "2") == [
        "bulksubmit: submit echo a 1", "bulksubmit: submit echo a 2",
        "bulksubmit: submit echo b 1", "bulksubmit: submit echo b 2"]


def test_linked_inputs(env):
    assert dry(env, "echo", "{0}{1}", ":::", "a", "b", ":::+", "1", "2") == [
        "bulksubmit: submit echo a1", "bulksubmit: submit echo b2"]


def test_input_attributes(env):
    assert dry(env, "cmd", "{.%}", "{./}", "{.//}", "{./%}", ":::", "/d/f.txt") == [
        "bulksubmit: submit cmd /d/f f.txt /d f"]


def test_seq_and_default_command(env):
    assert dry(env, "echo", "{seq}", "{seq1}", "{}", ":::", "a", "b") == [
        "bulksubmit: submit echo 0 1 a", "bulksubmit: submit echo 1 2 b"]
    assert dry(env, input="hostname\n") == ["bulksubmit: submit hostname"]


def test_substitution_in_options_is_shown(env):
    assert dry(env, "-n", "{}", "--job-name=job{}", "hostname", ":::", "2") == [
        "bulksubmit: submit -n2 --job-name=job2 hostname"]


def test_mustache_templates_are_kept(env):
    assert dry(env, "--output=out.{{id}}.{}", "true", ":::", "a") == [
        "bulksubmit: submit --output=out.{{id}}.a true"]


def test_progress_dry_run_shows_total(env):
    assert dry(env, "--progress", "--cc=1-2", "true", "{}", ":::", "a", "b")[0] == \
        "bulksubmit: submitting a total of 4 jobs"


def test_cc_copies_each_input(env):
    r = flux(env, "bulksubmit", "--watch", "--cc=1-2", "echo", "{}", "{cc}", ":::", "a")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()[2:]) == ["a 1", "a 2"]


def test_wait_exit_code_is_the_largest(env):
    r = flux(env, "bulksubmit", "--wait", "sh", "-c", "exit {}", ":::", "0", "2", "1")
    assert r.returncode == 2
    assert len(r.stdout.split()) == 3


def test_wait_event_start(env):
    r = flux(env, "bulksubmit", "--wait-event=start", "true", ":::", "a", "b")
    assert r.returncode == 0 and len(r.stdout.split()) == 2


def test_no_inputs_is_an_error(env):
    r = flux(env, "bulksubmit", "echo", "{}", input="")
    assert r.returncode == 1
    assert r.stderr == "flux-bulksubmit: no jobs provided for bulk submission\n"


def test_bad_replacement_index_is_an_error(env):
    r = flux(env, "bulksubmit", "echo", "{1}", ":::", "a")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert re.match(r"flux-bulksubmit: Invalid replacement index", r.stderr)
