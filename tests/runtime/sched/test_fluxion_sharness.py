"""flux-sched's own resource-query sharness cases, read in place from the vendored tarball.

``t3008-resource-cancel.t`` (cancel and partial cancel: rv1exec and JGF readers,
cross-rack releases under each kind of pruning filter, a refused partial cancel of a
reservation, invalid ranks leaving the allocation unchanged) is parsed from
``../shared/vendor/flux-sched-*.tar.gz``: each ``test_expect_success`` block gives
the resource-query arguments, the command file and the files it compares
(``test_cmp OUT expected/...``), stdout/stderr redirections included. Every case
runs fluxnb's ``resource-query`` the same way and compares byte for byte, after
dropping the timing and visit-count INFO lines as the conformance README says.
"""

from __future__ import annotations

import io
import re
import shlex
import sys
import tarfile
from pathlib import Path

import pytest

from fluxnb.cli import resource_query

VENDOR = Path(__file__).resolve().parents[3].parent / "shared" / "vendor"
_DROP = re.compile(r"^INFO: (ELAPSE|PREORDER VISIT COUNT|POSTORDER VISIT COUNT)=")
_SCRIPTS = ["t3008-resource-cancel.t"]


def _tarball() -> Path | None:
    found = sorted(VENDOR.glob("flux-sched-*.tar.gz"))
    return found[-1] if found else None


@pytest.fixture(scope="module")
def srcdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """flux-sched's t/ directory (data and scripts), unpacked once per module."""
    tb = _tarball()
    assert tb is not None
    dest = tmp_path_factory.mktemp("flux-sched")
    with tarfile.open(tb) as tf:
        top = tf.getmembers()[0].name.split("/", 1)[0]
        want = [m for m in tf.getmembers()
                if m.name.startswith(f"{top}/t/data/resource/") or m.name.startswith(f"{top}/t/t30")]
        tf.extractall(dest, members=want, filter="data")
    return dest / top / "t"


def _script_text(name: str) -> str:
    tb = _tarball()
    with tarfile.open(tb) as tf:  # type: ignore[arg-type]
        top = tf.getmembers()[0].name.split("/", 1)[0]
        f = tf.extractfile(f"{top}/t/{name}")
        assert f is not None
        return f.read().decode()


def _cases() -> list:
    if _tarball() is None:
        return []
    out = []
    for script in _SCRIPTS:
        text = _script_text(script)
        vars_: dict[str, str] = {}
        for m in re.finditer(r'^(\w+)="([^"]*)"\s*$', text, re.M):
            vars_[m.group(1)] = m.group(2)
        for m in re.finditer(r"test_expect_success \"\$\{(test\d+)_desc\}\" '\n(.*?)\n'", text, re.S):
            body = m.group(2)
            q = re.search(r"\$\{query\} (.*)$", body, re.M)
            cmds = re.search(r"sed \"[^\"]*\" \$\{(cmds\d+)\} > \S+", body)
            if not q or not cmds:
                continue
            cmps = re.findall(r"test_cmp (\S+) \$\{exp_dir\}/(\S+?)(?: &&)?$", body, re.M)
            out.append(pytest.param(script, vars_, q.group(1).rstrip(" &"), vars_[cmds.group(1)],
                                    cmps, id=f"{script[:5]}-{m.group(1)}"))
    return out


def _expand(s: str, vars_: dict[str, str], src: Path) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name == "SHARNESS_TEST_SRCDIR":
            return str(src)
        return _expand(vars_[name], vars_, src)
    return re.sub(r"\$\{(\w+)\}", sub, s)


def _filtered(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not _DROP.match(line))


@pytest.mark.skipif(_tarball() is None, reason="flux-sched sources not in ../shared/vendor")
@pytest.mark.parametrize("script,vars_,qargs,cmdfile,cmps", _cases())
def test_sharness_case(script: str, vars_: dict, qargs: str, cmdfile: str, cmps: list,
                       srcdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmds = Path(_expand(cmdfile, vars_, srcdir)).read_text().replace("@TEST_SRCDIR@", str(srcdir))
    words = shlex.split(_expand(qargs, vars_, srcdir))
    # the redirections: "< cmds", "2>> FILE" (stderr appended to the -t file), "2>FILE"
    args, err_to = [], None
    i = 0
    while i < len(words):
        w = words[i]
        if w == "<":
            i += 2
            continue
        if w in ("2>>", "2>"):
            err_to = (w, words[i + 1])
            i += 2
            continue
        if w.startswith("2>>") or w.startswith("2>"):
            op = "2>>" if w.startswith("2>>") else "2>"
            err_to = (op, w[len(op):])
            i += 1
            continue
        args.append(w)
        i += 1
    tix = args.index("-t")
    args[tix + 1] = str(tmp_path / args[tix + 1])
    out_err = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO(cmds))
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setattr(sys, "stderr", out_err)
    monkeypatch.chdir(tmp_path)
    assert resource_query.main(args + ["-d"]) == 0
    if err_to is not None:
        path = tmp_path / err_to[1]
        with open(path, "a" if err_to[0] == "2>>" else "w") as f:
            f.write(out_err.getvalue())
    assert cmps, "a case compares at least one file"
    for got, exp in cmps:
        expected = Path(_expand("${exp_dir}/" + exp, vars_, srcdir)).read_text()
        assert _filtered((tmp_path / got).read_text()) == _filtered(expected), f"{got} vs {exp}"
