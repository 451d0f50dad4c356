"""`flux archive create|list|extract|remove` as flux-archive(1) and flux-core's
t0021-archive-cmd.t describe them: RFC 37 file objects under ``archive.NAME``."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from tests.conftest import fluxnb_cmd


def fa(env, *args, cwd=None):
    """`flux archive ARGS` through the instance's flux shim, as a job or script runs it."""
    return subprocess.run(["flux", "archive", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def kvs_get(env, key):
    r = fluxnb_cmd("kvs", "get", key, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def tree(tmp_path):
    """src/ with a small text file, a small binary one, a large sparse-ish one,
    an empty one, a symlink and a private subdirectory."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "small.txt").write_text("hello archive\n")
    (src / "bin.dat").write_bytes(bytes(range(256)) * 2)          # 512 bytes, not UTF-8
    big = os.urandom(3000) + b"\0" * 5000 + os.urandom(1500)
    (src / "sub" / "big.dat").write_bytes(big)
    (src / "empty").write_bytes(b"")
    os.symlink("small.txt", src / "link")
    os.chmod(src / "small.txt", 0o600)
    os.chmod(src / "bin.dat", 0o755)
    os.chmod(src / "sub", 0o750)
    return tmp_path


def test_remove_of_a_missing_archive_fails_unless_forced(env):
    r = fa(env, "remove", "-n", "never")
    assert r.returncode == 1
    assert r.stderr == "flux-archive: archive.never does not exist\n"
    assert fa(env, "remove", "-n", "never", "-f").returncode == 0


def test_create_stores_rfc37_objects_under_archive_name(env, tree):
    r = fa(env, "create", "-n", "enc", "--chunksize=2K", "-C", str(tree / "src"),
           "small.txt", "bin.dat", "sub", "empty", "link")
    assert r.returncode == 0, r.stderr
    objs = {o["path"]: o for o in kvs_get(env, "archive.enc")}
    # a directory's contents come before it (depth first)
    assert list(objs) == ["small.txt", "bin.dat", "sub/big.dat", "sub", "empty", "link"]
    assert objs["small.txt"]["encoding"] == "utf-8"
    assert objs["small.txt"]["data"] == "hello archive\n"
    assert objs["bin.dat"]["encoding"] == "base64"
    big = objs["sub/big.dat"]
    assert big["encoding"] == "blobvec" and big["size"] == 9500
    assert all(len(e) == 3 and e[2].startswith("sha1-") for e in big["data"])
    assert all(e[1] <= 2048 for e in big["data"])              # --chunksize
    assert "encoding" not in objs["empty"] and objs["empty"]["size"] == 0
    assert objs["link"]["data"] == "small.txt" and stat.S_ISLNK(objs["link"]["mode"])
    assert stat.S_ISDIR(objs["sub"]["mode"]) and "size" not in objs["sub"]
    assert stat.S_IMODE(objs["small.txt"]["mode"]) == 0o600
    fa(env, "remove", "-n", "enc")


def test_list_short_long_pattern_and_raw(env, tree):
    assert fa(env, "create", "-n", "ls", "-C", str(tree / "src"), "small.txt", "sub").returncode == 0
    assert fa(env, "list", "-n", "ls").stdout == "small.txt\nsub/big.dat\nsub\n"
    assert fa(env, "list", "-n", "ls", "-l").stdout == (
        "f 0600       14 small.txt\n"
        "f 0644     9500 sub/big.dat\n"
        "d 0750        0 sub\n")
    assert fa(env, "list", "-n", "ls", "sub*").stdout == "sub/big.dat\nsub\n"
    r = fa(env, "list", "-n", "ls", "nomatch")
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr == "flux-archive: No files matched pattern 'nomatch'\n"
    raw = fa(env, "list", "-n", "ls", "--raw", "small.txt").stdout
    assert json.loads(raw)["data"] == "hello archive\n"
    fa(env, "remove", "-n", "ls")


def test_extract_round_trips_contents_and_modes(env, tree):
    src, dst = tree / "src", tree / "dst"
    dst.mkdir()
    assert fa(env, "create", "-n", "rt", "-C", str(src), ".").returncode == 0
    r = fa(env, "extract", "-n", "rt", "-v", "-C", str(dst))
    assert r.returncode == 0, r.stderr
    assert "sub/big.dat\n" in r.stderr           # -v lists on stderr
    umask = os.umask(0)
    os.umask(umask)
    for name in ("small.txt", "bin.dat", "sub/big.dat", "empty"):
        assert (dst / name).read_bytes() == (src / name).read_bytes(), name
        want = stat.S_IMODE(os.stat(src / name).st_mode) & ~umask
        assert stat.S_IMODE(os.stat(dst / name).st_mode) == want, name
    assert stat.S_IMODE(os.stat(dst / "sub").st_mode) == 0o750 & ~umask
    assert os.readlink(dst / "link") == "small.txt"
    fa(env, "remove", "-n", "rt")


def test_extract_refuses_to_overwrite_unless_asked(env, tree):
    dst = tree / "dst"
    dst.mkdir()
    fa(env, "create", "-n", "ow", "-C", str(tree / "src"), "small.txt")
    (dst / "small.txt").write_text("mine\n")
    r = fa(env, "extract", "-n", "ow", "-C", str(dst))
    assert r.returncode == 1
    assert r.stderr == "flux-archive: small.txt: write: Attempt to overwrite existing file\n"
    assert (dst / "small.txt").read_text() == "mine\n"
    assert fa(env, "extract", "-n", "ow", "--overwrite", "-C", str(dst)).returncode == 0
    assert (dst / "small.txt").read_text() == "hello archive\n"
    fa(env, "remove", "-n", "ow")


def test_extract_pattern_and_list_only(env, tree):
    dst = tree / "dst"
    dst.mkdir()
    fa(env, "create", "-n", "pat", "-C", str(tree / "src"), "small.txt", "bin.dat")
    r = fa(env, "extract", "-n", "pat", "-t", "-C", str(dst))
    assert r.stdout == "small.txt\nbin.dat\n" and not os.listdir(dst)
    assert fa(env, "extract", "-n", "pat", "-t", "-v").stdout.splitlines()[0] == \
        "f 0600       14 small.txt"
    assert fa(env, "extract", "-n", "pat", "-C", str(dst), "bin*").returncode == 0
    assert os.listdir(dst) == ["bin.dat"]
    fa(env, "remove", "-n", "pat")


def test_create_exists_overwrite_append(env, tree):
    src = str(tree / "src")
    assert fa(env, "create", "-n", "oa", "-C", src, "small.txt").returncode == 0
    r = fa(env, "create", "-n", "oa", "-C", src, "bin.dat")
    assert r.returncode == 1 and r.stderr == "flux-archive: archive.oa: key exists\n"
    assert fa(env, "create", "-n", "oa", "--append", "-C", src, "bin.dat").returncode == 0
    assert fa(env, "list", "-n", "oa").stdout == "small.txt\nbin.dat\n"
    assert fa(env, "create", "-n", "oa", "--overwrite", "-C", src, "empty").returncode == 0
    assert fa(env, "list", "-n", "oa").stdout == "empty\n"
    r = fa(env, "create", "-n", "oa", "--overwrite", "--append", "-C", src, "empty")
    assert r.returncode == 1
    assert r.stderr == "flux-archive: --overwrite and --append cannot be used together\n"
    fa(env, "remove", "-n", "oa")


def test_preserve_links_blobs_and_remove_unlinks_both(env, tree):
    fa(env, "create", "-n", "pr", "--preserve", "-C", str(tree / "src"), "sub/big.dat")
    nblobs = len(kvs_get(env, "archive.pr")[0]["data"])
    ls = fluxnb_cmd("kvs", "ls", "-1", "archive.pr_blobs", env=env)
    assert ls.stdout.split() == [str(i) for i in range(nblobs)]
    assert fa(env, "remove", "-n", "pr").returncode == 0
    assert fluxnb_cmd("kvs", "get", "archive.pr", env=env).returncode == 1
    assert fluxnb_cmd("kvs", "ls", "archive.pr_blobs", env=env).returncode == 1


def test_default_name_is_main(env, tree):
    fa(env, "create", "-C", str(tree / "src"), "small.txt")
    assert kvs_get(env, "archive.main")[0]["path"] == "small.txt"
    assert fa(env, "remove").returncode == 0


@pytest.mark.parametrize("args,err", [
    (["create", "-C", "/nonexistent/dir", "x"],
     "flux-archive: chdir /nonexistent/dir: No such file or directory\n"),
    (["extract", "-n", "none"],
     "flux-archive: KVS lookup archive.none: No such file or directory\n"),
    (["list", "-n", "none"],
     "flux-archive: KVS lookup archive.none: No such file or directory\n"),
    (["create", "-n", "x", "/nonexistent/file"],
     "flux-archive: /nonexistent/file: No such file or directory\n"),
    (["extract", "--waitcreate=bogus"],
     "flux-archive: could not parse --waitcreate timeout: Invalid argument\n"),
    (["extract", "-n", "none", "--waitcreate=0.2s"],
     "flux-archive: archive.none: key was not created within timeout window\n"),
])
def test_errors_are_one_line(env, args, err):
    r = fa(env, *args)
    assert r.returncode == 1
    assert r.stderr == err


def test_fifo_is_unsupported_and_no_path_prints_usage(env, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    r = fa(env, "create", "-n", "ff", "fifo", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == "flux-archive: fifo: unsupported file type\n"
    assert fluxnb_cmd("kvs", "get", "archive.ff", env=env).returncode == 1   # nothing committed
    r = fa(env, "create")
    assert r.returncode == 1 and r.stderr.startswith("usage: flux archive create")
    assert "--overwrite" in r.stderr                  # the whole help, as flux prints it


def test_another_rank_extracts_what_rank_0_created(env, tree):
    """flux-archive(1) example 1: create on rank 0, extract with flux exec -r 1."""
    src, dst = tree / "src", tree / "rank1"
    dst.mkdir()
    assert fa(env, "create", "-n", "x1", "-C", str(src), "sub", "small.txt").returncode == 0
    r = fluxnb_cmd("exec", "-r", "1", "flux", "archive", "extract", "-n", "x1",
                   "--waitcreate", "-C", str(dst), env=env)
    assert r.returncode == 0, r.stderr
    assert (dst / "sub" / "big.dat").read_bytes() == (src / "sub" / "big.dat").read_bytes()
    assert (dst / "small.txt").read_text() == "hello archive\n"
    fa(env, "remove", "-n", "x1")


def test_a_job_on_two_nodes_lists_the_primary_archive(env, tree):
    fa(env, "create", "-n", "job", "-C", str(tree / "src"), "small.txt")
    r = fluxnb_cmd("run", "-N2", "--label-io", "flux", "archive", "list", "-n", "job", env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["0: small.txt", "1: small.txt"]
    fa(env, "remove", "-n", "job")


def test_no_force_primary_uses_the_jobs_namespace(env, tree):
    """A job's own archive (its guest namespace) is found by --no-force-primary only."""
    script = tree / "job.sh"
    script.write_text(f"#!/bin/sh\nflux archive create --no-force-primary -n mine -C "
                      f"{tree / 'src'} small.txt && flux archive list --no-force-primary -n mine"
                      f" && ! flux archive list -n mine 2>/dev/null\n")
    script.chmod(0o755)
    r = fluxnb_cmd("run", str(script), env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "small.txt\n"
