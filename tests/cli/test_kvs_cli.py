"""`flux kvs` subcommands with flux-kvs(1)'s options and output."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import fluxnb_cmd


def k(env, *args, **kw):
    return fluxnb_cmd("kvs", *args, env=env, **kw)


def test_put_get_values_stored_directly(env):
    assert k(env, "put", "cli.a=1", "cli.b=hello world").returncode == 0
    assert k(env, "get", "cli.a", "cli.b").stdout == "1\nhello world\n"
    assert k(env, "get", "-l", "cli.a").stdout == "cli.a=1\n"
    assert k(env, "get", "-r", "cli.b").stdout == "hello world"


def test_treeobj_put_and_get(env):
    obj = {"data": "YWJj", "type": "val", "ver": 1}
    assert k(env, "put", "-t", f"cli.t={json.dumps(obj)}").returncode == 0
    assert k(env, "get", "cli.t").stdout == "abc\n"
    assert json.loads(k(env, "get", "-t", "cli.t").stdout) == obj


def test_append(env):
    k(env, "put", "cli.app=ab")
    k(env, "put", "-A", "cli.app=cd")
    assert k(env, "get", "cli.app").stdout == "abcd\n"


def test_ls_dir_mkdir_unlink(env):
    k(env, "put", "cli.d.x=1", "cli.d.y=2", "cli.d.sub.z=3")
    assert k(env, "ls", "-1", "cli.d").stdout == "sub\nx\ny\n"
    assert k(env, "ls", "-1", "-F", "cli.d").stdout == "sub.\nx\ny\n"
    assert k(env, "dir", "cli.d").stdout == "cli.d.sub.\ncli.d.x = 1\ncli.d.y = 2\n"
    assert k(env, "dir", "-R", "cli.d").stdout == "cli.d.sub.z = 3\ncli.d.x = 1\ncli.d.y = 2\n"
    r = k(env, "unlink", "cli.d")
    assert r.returncode == 1 and "-R" in r.stderr
    assert k(env, "unlink", "-R", "cli.d").returncode == 0
    assert k(env, "get", "cli.d.x").returncode == 1
    assert k(env, "unlink", "-f", "cli.never").returncode == 0
    assert k(env, "mkdir", "cli.empty").returncode == 0
    assert k(env, "ls", "cli.empty").stdout == ""


def test_link_readlink(env):
    k(env, "put", "cli.real=val")
    k(env, "link", "cli.real", "cli.alias")
    assert k(env, "readlink", "cli.alias").stdout == "cli.real\n"
    assert k(env, "get", "cli.alias").stdout == "val\n"
    k(env, "namespace", "create", "clins")
    k(env, "link", "-T", "clins", "inner", "cli.cross")
    assert k(env, "readlink", "cli.cross").stdout == "clins::inner\n"
    assert k(env, "readlink", "-k", "cli.cross").stdout == "inner\n"


def test_getroot_version_and_put_sequence(env):
    seq = int(k(env, "put", "-s", "cli.seq=1").stdout)
    assert int(k(env, "version").stdout) >= seq
    assert int(k(env, "getroot", "-s").stdout) >= seq
    root = json.loads(k(env, "getroot").stdout)
    assert root["type"] == "dirref" and root["data"][0].startswith("sha1-")
    # a lookup at an old root still sees the old value
    k(env, "put", "cli.snap=old")
    old = k(env, "getroot").stdout.strip()
    k(env, "put", "cli.snap=new")
    assert k(env, "get", "-a", old, "cli.snap").stdout == "old\n"
    assert k(env, "get", "cli.snap").stdout == "new\n"
    assert k(env, "wait", str(seq)).returncode == 0


def test_namespace_create_list_remove(env):
    k(env, "namespace", "create", "cli-ns")
    lines = k(env, "namespace", "list").stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "OWNER", "FLAGS"]
    assert any(l.split()[0] == "cli-ns" for l in lines[1:])
    k(env, "put", "-N", "cli-ns", "q=5")
    assert k(env, "get", "-N", "cli-ns", "q").stdout == "5\n"
    assert k(env, "get", "q").returncode == 1
    k(env, "namespace", "remove", "cli-ns")
    r = k(env, "get", "-N", "cli-ns", "q")
    assert r.returncode == 1 and "cli-ns" in r.stderr


def test_eventlog_append_get_wait(env):
    k(env, "eventlog", "append", "-t", "1700000000.5", "cli.ev", "submit", '{"urgency": 16}')
    k(env, "eventlog", "append", "-t", "1700000001.25", "cli.ev", "done")
    assert k(env, "eventlog", "get", "cli.ev").stdout == \
        "1700000000.500000 submit urgency=16\n1700000001.250000 done\n"
    raw = [json.loads(l) for l in k(env, "eventlog", "get", "-u", "cli.ev").stdout.splitlines()]
    assert raw[0] == {"timestamp": 1700000000.5, "name": "submit", "context": {"urgency": 16}}
    # the waiter starts first and must still be waiting when the event is appended
    waiter = subprocess.Popen([sys.executable, "-m", "fluxnb.cli.main", "kvs", "eventlog",
                               "wait-event", "cli.ev", "finish"], env=env,
                              stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert waiter.poll() is None, "wait-event returned before the event existed"
    assert k(env, "eventlog", "append", "cli.ev", "finish").returncode == 0
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0 and out.split()[1] == "finish"
    r = k(env, "eventlog", "wait-event", "-t", "0.3", "cli.ev", "never")
    assert r.returncode == 1 and "timeout" in r.stderr
    r = k(env, "eventlog", "append", "cli.ev", "bad", "not json")
    assert r.returncode == 1 and "JSON object" in r.stderr


def test_watch_prints_each_value(env):
    writer = subprocess.Popen([sys.executable, "-c",
                               "import time,subprocess,sys\n"
                               "for i in range(3):\n"
                               "    time.sleep(0.3)\n"
                               "    subprocess.run([sys.executable,'-m','fluxnb.cli.main','kvs','put',f'cli.w={i}'])"],
                              env=env)
    r = k(env, "get", "-W", "-w", "-c", "3", "cli.w", timeout=30)
    writer.wait()
    assert r.stdout == "0\n1\n2\n"


@pytest.mark.parametrize("args,text", [
    (["put", "novalue"], "key=value"),
    (["put", "=x"], "key is empty"),
    (["get", "cli.nonexistent.key"], "cli.nonexistent.key: No such file or directory"),
    (["get", "."], "Is a directory"),
    (["put", "-t", "x=notjson"], "RFC 11"),
])
def test_bad_input_gets_one_clear_line(env, args, text):
    r = k(env, *args)
    assert r.returncode == 1 and text in r.stderr and "Traceback" not in r.stderr
