"""getattr/setattr/lsattr, uptime, module, dmesg, ping, help and errors, as flux prints them."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import fluxnb_cmd


def test_help_for_every_command(env):
    from fluxnb.cli.main import available
    top = fluxnb_cmd("--help")
    assert top.returncode == 0
    for name in available():
        assert name in top.stdout
        r = fluxnb_cmd(name, "--help", env=env)
        assert r.returncode == 0 and ("usage" in r.stdout.lower()), name


def test_unknown_command_and_option(env):
    r = fluxnb_cmd("frobnicate", env=env)
    assert r.returncode == 1 and "'frobnicate' is not a fluxnb command" in r.stderr
    r = fluxnb_cmd("getattr", "--frob", "size", env=env)
    assert r.returncode == 2 and "--frob" in r.stderr


def test_getattr_setattr_lsattr(env):
    assert fluxnb_cmd("getattr", "size", env=env).stdout == "4\n"
    assert fluxnb_cmd("setattr", "user.x", "42", env=env).returncode == 0
    assert fluxnb_cmd("getattr", "user.x", env=env).stdout == "42\n"
    r = fluxnb_cmd("getattr", "nope", env=env)
    assert r.returncode == 1 and r.stderr == "fluxnb-getattr: nope: No such file or directory\n"
    r = fluxnb_cmd("setattr", "rank", "2", env=env)
    assert r.returncode == 1 and "immutable" in r.stderr
    lines = fluxnb_cmd("lsattr", "-v", env=env).stdout.splitlines()
    values = dict(re.match(r"(\S+)\s+(.*)", line).groups() for line in lines)
    assert values["size"] == "4" and values["rank"] == "0" and values["user.x"] == "42"
    # values start in one column, as flux's "%-*s %s" does
    assert len({line.index(values[line.split()[0]]) for line in lines if values[line.split()[0]]}) == 1


def test_uptime_format(env):
    out = fluxnb_cmd("uptime", env=env).stdout
    assert re.fullmatch(r" \d\d:\d\d:\d\d run \d+(\.\d)?[smhd],  owner \S+,  depth 0,  size 4\n", out), out


def test_module_list_load_unload(env):
    out = fluxnb_cmd("module", "list", env=env).stdout.splitlines()
    assert out[0].split() == ["Module", "Idle", "S", "Sendq", "Recvq", "Service"]  # flux-core 0.88
    assert any(line.split()[0] == "kvs" for line in out[1:])
    assert fluxnb_cmd("module", "unload", "-r", "1", "rexec", env=env).returncode == 0
    names = [l.split()[0] for l in fluxnb_cmd("module", "list", "-r", "1", env=env).stdout.splitlines()[1:]]
    assert "rexec" not in names
    assert fluxnb_cmd("module", "load", "-r", "1", "rexec", env=env).returncode == 0
    r = fluxnb_cmd("module", "load", "nonesuch", env=env)
    assert r.returncode == 1 and "nonesuch" in r.stderr


def test_dmesg_prints_and_clears(env):
    out = fluxnb_cmd("dmesg", env=env).stdout
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z broker\.info\[3\]: ", out, re.M)
    assert fluxnb_cmd("dmesg", "-C", env=env).returncode == 0
    assert fluxnb_cmd("dmesg", env=env).stdout == ""


def test_ping(env):
    out = fluxnb_cmd("ping", "-c", "2", "-i", "0.01", "3!broker", env=env).stdout.splitlines()
    assert len(out) == 2
    assert re.fullmatch(r"3!broker\.ping pad=0 seq=0 time=\d+\.\d{3} ms \(0!1!3\)", out[0])
    r = fluxnb_cmd("ping", "-c", "1", "nosuchsvc", env=env)
    assert r.returncode == 1 and "nosuchsvc.ping" in r.stderr


def test_exec_bad_rank(env):
    r = fluxnb_cmd("exec", "-r", "9", "true", env=env)
    assert r.returncode == 1 and "rank 9" in r.stderr
    r = fluxnb_cmd("exec", "-r", "0", "no-such-cmd-q", env=env)
    assert r.returncode == 127 and "no-such-cmd-q" in r.stderr


def test_no_instance_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FLUX_URI"}
    r = fluxnb_cmd("getattr", "size", env=env)
    assert r.returncode == 1 and "FLUX_URI is not set" in r.stderr
    env["FLUX_URI"] = f"local://{tmp_path}/nothing"
    r = fluxnb_cmd("getattr", "size", env=env)
    assert r.returncode == 1 and "is the instance running" in r.stderr
