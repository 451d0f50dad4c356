"""critical_path: PERFFLOW_OPTIONS, file naming, event fields, valid JSON, async pairs."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap

import pytest

from fluxnb.trace.aspect import parse_options
from fluxnb.trace.format import load, parse, validate

PROGRAM = textwrap.dedent("""
    import asyncio, threading
    from fluxnb.trace import critical_path, async_event, sync_event

    @critical_path()
    def around(n):
        return inner(n) + 1

    @critical_path(pointcut="around")
    def inner(n):
        return n

    @critical_path(pointcut="before")
    def begin():
        pass

    @critical_path(pointcut="after")
    def end():
        pass

    @critical_path(pointcut="around_async")
    def task(i):
        return i

    @critical_path(pointcut="before_async", scope="io")
    def send(i):
        pass

    @critical_path(pointcut="after_async", scope="io")
    def receive(i):
        pass

    @critical_path()
    async def coro(i):
        await asyncio.sleep(0.001)
        return i

    @critical_path()
    def boom():
        raise RuntimeError("still traced")

    assert around(1) == 2
    begin(); end()
    for i in range(3):
        send(i)
    for i in range(3):
        receive(i)
    threads = [threading.Thread(target=lambda: [around(i) for i in range(600)]) for _ in range(3)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert [task(i) for i in range(5)] == list(range(5))
    async def main():
        return await asyncio.gather(*(coro(i) for i in range(4)))
    assert asyncio.run(main()) == [0, 1, 2, 3]
    try:
        boom()
    except RuntimeError:
        pass
    sync_event("before", "phase", "app"); sync_event("after", "phase", "app")
    async_event("before", "op", "app", id=7); async_event("after", "op", "app", id=7)
    print("done")
""")


def run_program(tmp_path, options: str, code: str = PROGRAM) -> subprocess.CompletedProcess:
    env = dict(os.environ, PERFFLOW_OPTIONS=options)
    env.pop("PERFFLOW_INSTANCE_PATH", None)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def test_parse_options_defaults_and_ill_formed(capsys):
    opts = parse_options("name=dock:log-dir=/x:bogus:log-event=Compact")
    assert opts["name"] == "dock" and opts["log-dir"] == "/x" and opts["log-event"] == "Compact"
    assert opts["log-format"] == "Array" and opts["log-enable"] == "True"
    assert "ill-formed option 'bogus'" in capsys.readouterr().err


@pytest.mark.parametrize("event,fmt", [("verbose", "array"), ("compact", "object"),
                                       ("Verbose", "Object"), ("COMPACT", "ARRAY")])
def test_trace_file_is_valid_json_and_trace_event_format(tmp_path, event, fmt):
    r = run_program(tmp_path, f"log-event={event}:log-format={fmt}:cpu-mem-usage=True")
    assert r.returncode == 0, r.stderr
    files = glob.glob(str(tmp_path / "perfflow.*.pfw"))
    assert [os.path.basename(f) for f in files] == [f"perfflow.{os.uname()[1]}.{_pid(files[0])}.pfw"]
    data = json.loads(open(files[0]).read())           # strict JSON: the file was completed
    events = data if fmt.lower() == "array" else data["traceEvents"]
    assert isinstance(data, list) == (fmt.lower() == "array")
    assert validate(events) == []
    names = {e["name"] for e in events}
    assert {"around", "inner", "begin", "end", "task", "send", "coro", "boom", "phase", "op"} <= names
    for e in events:
        assert {"name", "cat", "ph", "ts", "pid", "tid"} <= set(e)
    phases = {e["ph"] for e in events}
    if event.lower() == "compact":
        assert "X" in phases and not {e["ph"] for e in events if e["name"] == "around"} & {"B", "E"}
    else:
        assert {"B", "E"} <= phases
    assert "C" in phases  # cpu-mem-usage counters
    # around_async: a fresh id per call, its end with the same id
    ids = [e["id"] for e in events if e["name"] == "task" and e["ph"] == "b"]
    assert len(set(ids)) == 5
    assert sorted(ids) == sorted(e["id"] for e in events if e["name"] == "task" and e["ph"] == "e")
    # before_async/after_async pair first-in first-out within their scope
    sends = [e for e in events if e["ph"] == "b" and e.get("scope") == "io"]
    ends = [e for e in events if e["ph"] == "e" and e.get("scope") == "io"]
    assert [e["id"] for e in sends] == [e["id"] for e in ends]
    assert all(e["name"] == "send" and e["args"]["func"] == "receive" for e in ends)
    assert sum(1 for e in events if e["name"] == "around" and e["ph"] in "BX") == 1801
    assert {e["cat"] for e in events if e["name"] == "around"} == {"__main__"}


def _pid(path: str) -> str:
    return os.path.basename(path).split(".")[-2]


def test_file_name_options_and_log_dir(tmp_path):
    r = run_program(tmp_path, "name=dock:log-filename-include=name,instance-path,pid:log-dir=logs")
    assert r.returncode == 0, r.stderr
    (path,) = glob.glob(str(tmp_path / "logs" / "perfflow.dock.{*}.*.pfw"))
    assert validate(load(path)) == []


def test_disabled_tracer_runs_functions_untraced(tmp_path):
    r = run_program(tmp_path, "log-enable=False")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "done" and r.stderr == ""
    assert glob.glob(str(tmp_path / "**" / "*.pfw"), recursive=True) == []


def test_bad_option_value_is_an_error(tmp_path):
    r = run_program(tmp_path, "log-format=yaml")
    assert r.returncode != 0 and "log-format='yaml'" in r.stderr


def test_file_valid_after_flush_and_forked_child_has_its_own(tmp_path):
    code = textwrap.dedent("""
        import json, os, sys
        from fluxnb.trace import critical_path, flush
        @critical_path()
        def f():
            pass
        f()
        path = flush()
        assert json.load(open(path))[-1]["name"] == "f"   # valid while the program runs
        f()
        pid = os.fork()
        if pid == 0:
            f()
            sys.exit(0)
        os.waitpid(pid, 0)
        f()
    """)
    r = run_program(tmp_path, "log-event=compact", code)
    assert r.returncode == 0, r.stderr
    files = sorted(glob.glob(str(tmp_path / "*.pfw")))
    assert len(files) == 2
    counts = sorted(len(json.load(open(p))) for p in files)
    assert counts == [1, 3]  # the child's file has only its own call


def test_unterminated_file_still_loads():
    text = '[\n{"name": "f", "ph": "X", "ts": 1, "dur": 1, "pid": 1, "tid": 1},\n'
    assert parse(text)[0]["name"] == "f"
    assert parse('{"traceEvents": [{"name": "f", "ph": "i", "ts": 1, "pid": 1, "tid": 1}')


def test_validate_finds_problems():
    bad = [{"name": "a", "ph": "B", "ts": 0, "pid": 1, "tid": 1},
           {"name": "a", "ph": "E", "ts": 2, "pid": 1, "tid": 2},
           {"name": "x", "ph": "X", "ts": 3, "pid": 1, "tid": 1},
           {"name": "y", "ph": "e", "ts": 4, "pid": 1, "tid": 1, "id": 3},
           {"name": "z", "ph": "i", "pid": 1, "tid": 1}]
    problems = "\n".join(validate(bad))
    assert "with no open B" in problems and "has no E" in problems and "without a non-negative dur" in problems
    assert "no open b" in problems and "missing ts" in problems


