"""Pure logic of the submission commands: --env rules, KEY=VAL parsing, input splitting,
substitution, exit codes, the progress bar (no instance needed)."""

from __future__ import annotations

import argparse

import pytest

from fluxnb.cli.attach import waitstatus_to_exitcode
from fluxnb.cli.common import CommandError
from fluxnb.cli.jobspec_args import (cc_list, environment_rules, parse_keyval, parse_time_limit,
                                     parse_urgency, substitute)
from fluxnb.cli.submit import split_inputs
from fluxnb.cli.submit_wait import ProgressBar, _exitcode


def test_env_rules_in_order(monkeypatch):
    monkeypatch.setenv("HOME_X", "/h")
    env = {"A": "1", "B": "2", "FLUX_X": "3"}
    assert environment_rules(["-FLUX_*"], env) == {"A": "1", "B": "2"}
    assert environment_rules(["-/^[AB]$/"], env) == {"FLUX_X": "3"}
    assert environment_rules(["C=$A$B"], env)["C"] == "12"
    assert environment_rules(["-*", "HOME_X"], env) == {"HOME_X": "/h"}
    assert environment_rules(["A"], env)["A"] == "1"  # already set: not overwritten


def test_env_rule_unknown_variable():
    with pytest.raises(CommandError, match="Variable 'NOPE_NOT_SET' not found"):
        environment_rules(["X=$NOPE_NOT_SET"], {})


def test_env_file(tmp_path):
    f = tmp_path / "rules"
    f.write_text("-*\nY=2\n")
    assert environment_rules([f"^{f}"], {"X": "1"}) == {"Y": "2"}


def test_keyval_json_or_string():
    assert parse_keyval("--setattr", "a=1") == ("a", 1)
    assert parse_keyval("--setattr", 'a={"b": [1]}') == ("a", {"b": [1]})
    assert parse_keyval("--setattr", "a=hello") == ("a", "hello")
    assert parse_keyval("--setopt", "a") == ("a", 1)


def test_time_limit_minutes_without_units():
    assert parse_time_limit("2") == 120
    assert parse_time_limit("30s") == 30
    with pytest.raises(CommandError):
        parse_time_limit("-1s")


def test_urgency_names():
    assert [parse_urgency(x) for x in ("hold", "default", "expedite", "7")] == [0, 16, 31, 7]
    with pytest.raises(CommandError):
        parse_urgency("32")


def test_cc_list():
    ns = argparse.Namespace(cc="1-3,5", bcc=None)
    assert list(cc_list(ns)) == [1, 2, 3, 5]  # an IDSet, iterated lazily
    assert cc_list(argparse.Namespace(cc=None, bcc=None)) == [None]
    with pytest.raises(CommandError, match="only one of --cc or --bcc"):
        cc_list(argparse.Namespace(cc="1", bcc="2"))


def test_split_inputs():
    assert split_inputs(["a", "{}", ":::", "1", "2", ":::", "x"]) == (["a", "{}"],
                                                                      [["1", "2"], ["x"]], [])


def test_substitute_keeps_mustache():
    assert substitute("f-{{id}}-{}", ["a"], "") == "f-{{id}}-a"
    assert substitute("{0./%}", ["/x/y.z"], "") == "y"
    with pytest.raises(CommandError):
        substitute("{2}", ["a"], "")


@pytest.mark.parametrize("status, code, text", [
    (0, 0, ""),
    (1 << 8, 1, "task(s) exited with exit code 1"),
    ((128 + 9) << 8, 137, "task(s) Killed"),
    (15, 143, "job shell Terminated"),
])
def test_waitstatus_to_exitcode(status, code, text):
    assert waitstatus_to_exitcode(status) == (code, text)


def test_watcher_exit_code_of_signaled_job_is_127_plus_signal():
    assert _exitcode(9) == 127 + 9
    assert _exitcode(3 << 8) == 3


def test_progress_bar_render():
    bar = ProgressBar.for_jobs(4, jps=False)
    bar.tty = False
    bar.counts.update(pending=0, complete=3, failed=1)
    bar.count = 4
    text = bar.render(60)
    assert text.startswith("PD:0   R:0   CD:3   F:1   │") and text.endswith("│100.0% 0:00:00")
    assert len(text) == 60
