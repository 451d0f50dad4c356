"""CLI details real Flux material relies on: RFC 36 ``#FLUX:`` directives in
``flux batch`` scripts, output file truncation (``-o output.mode=append``),
``flux version``, ``flux lsattr -v`` and ``flux queue list`` limits, compared
with flux-core's formats."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from fluxnb import Flux, Instance
from fluxnb.cli.directives import directive_args, parse_directives
from fluxnb.job import JobID, result
from tests.conftest import fluxnb_cmd

REAL_FLUX = "/opt/flux/bin/flux"

SCRIPT = """#!/bin/sh
#FLUX: -N2
#FLUX: --job-name=x
echo size=$(flux getattr size)
flux run -N2 -n2 flux getattr rank | sort
"""


@pytest.fixture(scope="module")
def inst():
    with Instance(test_size=2, cores_per_node=2) as i:
        yield i


@pytest.fixture
def env(inst, tmp_path):
    e = inst.environ(0)
    e["TMPDIR"] = str(tmp_path)
    return e


def flux(env, *args, cwd=None, timeout=60, input=None):
    return fluxnb_cmd(*args, env=env, cwd=cwd, timeout=timeout, input=input)


# -- the directive parser (RFC 36) ---------------------------------------------------------
def test_directives_follow_rfc36_quoting_comments_and_multiline():
    script = ('#!/bin/sh\n# flux: -N4 -n16  # a comment\n# flux: --job-name="two words"\n'
              '# flux: --setattr=user.conf="""\n# flux: [config]\n# flux:   item = "foo"\n'
              '# flux: """\n\nflux run hostname\n')
    assert parse_directives(script) == [
        (2, ["-N4", "-n16"]), (3, ["--job-name=two words"]),
        (4, ['--setattr=user.conf=[config]\n  item = "foo"\n'])]
    # any comment syntax is a prefix; a non-directive comment does not end the block
    assert directive_args("#!/usr/bin/env lua\n-- flux: -n1\n-- plain comment\n-- flux: -c2\n") \
        == ["-n1", "-c2"]


@pytest.mark.parametrize("script, error", [
    ("#!/bin/sh\n#FLUX: -N2\nhostname\n#FLUX: -n1\n",
     "line 4: orphan 'FLUX:' detected: directives disabled after line 2"),
    ("#!/bin/sh\n#FLUX: -N2\n# flux: -n2\n", "line 3: sentinel changed from '#FLUX:' to '# flux:'"),
    ("#!/bin/sh\n#FLUX: hostname\n", "line 2: Unknown directive: hostname"),
    ("#!/bin/sh\n#FLUX: --job-name='x\n", "line 2:"),
])
def test_bad_directives_name_the_line(script, error):
    with pytest.raises(ValueError) as exc:
        parse_directives(script)
    assert str(exc.value).startswith(error)


# -- flux batch applies them -------------------------------------------------------------
def test_batch_directives_set_nodes_and_name(env, inst, tmp_path):
    (tmp_path / "job.sh").write_text(SCRIPT)
    r = flux(env, "batch", "job.sh", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    jobid = JobID(r.stdout.strip())
    with Flux(inst.uri) as h:
        info = result(h, jobid)
    assert (info["result"], info["name"], info["nnodes"]) == ("COMPLETED", "x", 2), info
    out = (tmp_path / f"flux-{jobid.f58}.out").read_text()
    assert out == "size=2\n0\n1\n", out  # the nested instance has the two nodes


def test_batch_command_line_overrides_directives(env, inst, tmp_path):
    (tmp_path / "job.sh").write_text(SCRIPT.replace("flux run -N2 -n2", "flux run -n1"))
    r = flux(env, "batch", "-N1", "--job-name=y", "job.sh", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with Flux(inst.uri) as h:
        info = result(h, JobID(r.stdout.strip()))
    assert (info["result"], info["name"], info["nnodes"]) == ("COMPLETED", "y", 1), info


def test_batch_bad_directive_is_one_error_naming_the_line(env, tmp_path):
    (tmp_path / "bad.sh").write_text("#!/bin/sh\n#FLUX: -N2\n#FLUX: --no-such-option\nhostname\n")
    r = flux(env, "batch", "bad.sh", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == ""
    assert "argument parsing failed at bad.sh line 3" in r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "orphan.sh").write_text("#!/bin/sh\n#FLUX: -N2\nhostname\n#FLUX: -n1\n")
    r = flux(env, "batch", "orphan.sh", cwd=tmp_path)
    assert r.returncode == 1
    assert "orphan.sh: line 4: orphan 'FLUX:' detected" in r.stderr


def test_batch_wrap_ignores_directive_lookalikes(env, inst, tmp_path):
    r = flux(env, "batch", "--wrap", "echo", "#FLUX: -N2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with Flux(inst.uri) as h:
        assert result(h, JobID(r.stdout.strip()))["nnodes"] == 1


# -- output files: truncated unless output.mode=append -------------------------------------
def test_output_file_truncated_unless_append_mode(env, tmp_path):
    out = tmp_path / "o.txt"
    out.write_text("OLD CONTENT THAT IS LONGER\n")
    r = flux(env, "run", "-N2", "-n2", "--output=o.txt", "echo", "hi", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == "hi\nhi\n"  # both ranks' output, old content gone
    r = flux(env, "run", "-n1", "-o", "output.mode=append", "--output=o.txt", "echo", "again",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == "hi\nhi\nagain\n"
    r = flux(env, "run", "-n1", "--output=o.txt", "echo", "third", cwd=tmp_path)
    assert out.read_text() == "third\n"


def test_batch_output_template_truncated(env, tmp_path):
    out = tmp_path / "b.out"
    out.write_text("stale\n" * 10)
    r = flux(env, "batch", "--output=b.out", "--wrap", "echo", "fresh", cwd=tmp_path)
    with Flux(env["FLUX_URI"]) as h:
        assert result(h, JobID(r.stdout.strip()))["result"] == "COMPLETED"
    assert out.read_text() == "fresh\n"


# -- flux version, lsattr -v, queue list --------------------------------------------------
VERSION_LINES = [r"commands:    \t\t\S+", r"libflux-core:\t\t\S+", r"broker:  \t\t\S+",
                 r"FLUX_URI:\t\tlocal://\S+", r"build-options:\t\t\+\S*"]


def test_version_prints_flux_core_lines(env):
    from fluxnb.runtime.instance import _version
    r = flux(env, "version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 5 and all(re.fullmatch(p, l) for p, l in zip(VERSION_LINES, lines)), lines
    assert lines[0].split("\t")[-1] == lines[1].split("\t")[-1] == _version()
    assert lines[3].endswith(env["FLUX_URI"])
    outside = {k: v for k, v in env.items() if k != "FLUX_URI"}
    lines = flux(outside, "version").stdout.splitlines()
    assert [l.split(":")[0] for l in lines] == ["commands", "libflux-core", "build-options"]


@pytest.mark.skipif(not os.access(REAL_FLUX, os.X_OK), reason="needs flux-core at /opt/flux")
def test_version_labels_match_real_flux():
    real = subprocess.run([REAL_FLUX, "version"], capture_output=True, text=True, timeout=30)
    ours = fluxnb_cmd("version", env={k: v for k, v in os.environ.items() if k != "FLUX_URI"})
    label = re.compile(r"^[^\t]+\t+")
    assert [label.match(l).group() for l in ours.stdout.splitlines()] == \
        [label.match(l).group() for l in real.stdout.splitlines()
         if not l.startswith("libflux-security")]


def test_lsattr_v_pads_names_to_40_columns(env):
    r = flux(env, "lsattr", "-v")
    assert r.returncode == 0, r.stderr
    rows = dict((l[:40].rstrip(), l[40:]) for l in r.stdout.splitlines())
    assert rows["size"] == "2" and rows["broker.hostname"]
    assert all(len(l) > 40 and l[39] == " " for l in r.stdout.splitlines() if len(l.split()[0]) < 40)
    names = flux(env, "lsattr").stdout.split()
    assert names == list(rows)


def test_queue_list_limits_are_inf(env):
    r = flux(env, "queue", "list")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header == " EN ST TDEFAULT   TLIMIT     NNODES     NCORES      NGPUS"
    # as flux-core's default format, the marks are colored even into a pipe
    green, off = "\033[01;32m", "\033[0;0m"
    assert row == (f" {green} ✔{off} {green} ✔{off}      inf      inf        0-2        0-4"
                   "        0-0")
    r = flux(env, "queue", "list", "-n", "-o", "{queue}|{enabled}|{limits.max.nnodes}")
    assert r.stdout == "|✔|inf\n"


def test_run_prints_flux_redirect_notes(env, tmp_path):
    r = flux(env, "run", "-N2", "-n2", "--output=o.txt", "true", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stderr == "[0-1]: stdout redirected to o.txt\n[0-1]: stderr redirected to o.txt\n"
    r = flux(env, "run", "-n1", "--output=a.out", "--error=a.err", "true", cwd=tmp_path)
    assert r.stderr == "0: stdout redirected to a.out\n0: stderr redirected to a.err\n"
    r = flux(env, "submit", "--output=flux-{{id}}.txt", "true", cwd=tmp_path)
    jobid = r.stdout.strip()
    r = flux(env, "job", "attach", jobid, cwd=tmp_path)
    assert r.stderr == (f"0: stdout redirected to flux-{jobid}.txt\n"
                        f"0: stderr redirected to flux-{jobid}.txt\n")
    assert flux(env, "job", "attach", "-q", jobid, cwd=tmp_path).stderr == ""
    assert flux(env, "run", "--output=kvs", "echo", "x", cwd=tmp_path).stderr == ""


@pytest.mark.skipif(not os.access(REAL_FLUX, os.X_OK), reason="needs flux-core at /opt/flux")
def test_redirect_notes_and_truncation_match_real_flux(env, tmp_path):
    script = ("echo OLD-OLD-OLD > o.txt; flux run -N2 -n2 --output=o.txt echo hi; cat o.txt; "
              "flux run -n1 -o output.mode=append --output=o.txt echo again; cat o.txt")
    real = subprocess.run([REAL_FLUX, "start", "--test-size=2", "sh", "-c", script],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    ours = subprocess.run(["sh", "-c", script], env=dict(env, PATH=env["PATH"]),
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert real.returncode == 0, real.stderr
    assert (ours.stdout, ours.stderr) == (real.stdout, real.stderr)


@pytest.mark.skipif(not os.access(REAL_FLUX, os.X_OK), reason="needs flux-core at /opt/flux")
@pytest.mark.parametrize("extra", [[], ["-N1"], ["--job-name=cli", "-t", "1h"]])
def test_batch_dry_run_directives_match_real_flux(tmp_path, extra):
    import json
    (tmp_path / "d.sh").write_text("#!/bin/sh\n#FLUX: -N2 -n4\n#FLUX: --job-name=x -t 5m\n"
                                   "# a comment\nhostname\n")

    def key(out):
        js = json.loads(out)
        system = js["attributes"]["system"]
        return js["resources"], system["job"], system["duration"], js["tasks"][0]["command"]

    env = {k: v for k, v in os.environ.items() if k != "FLUX_URI"}
    real = subprocess.run([REAL_FLUX, "batch", "--dry-run", *extra, "d.sh"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=env)
    ours = fluxnb_cmd("batch", "--dry-run", *extra, "d.sh", cwd=tmp_path, env=env)
    assert real.returncode == ours.returncode == 0, (real.stderr, ours.stderr)
    assert key(ours.stdout) == key(real.stdout)


def test_error_kvs_keeps_stderr_in_the_kvs(env, tmp_path):
    r = flux(env, "run", "--error=kvs", "sh", "-c", "echo err >&2", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "err\n")
    assert not (tmp_path / "kvs").exists()
    r = flux(env, "run", "--output=o.txt", "--error=kvs", "sh", "-c", "echo E >&2; echo O",
             cwd=tmp_path)
    # as flux-core: stderr follows stdout into the file
    assert r.stderr == "0: stdout redirected to o.txt\n0: stderr redirected to o.txt\n"
    assert sorted((tmp_path / "o.txt").read_text().split()) == ["E", "O"]
    r = flux(env, "run", "--output=kvs", "echo", "x", cwd=tmp_path)
    assert (r.stdout, r.stderr) == ("x\n", "")
