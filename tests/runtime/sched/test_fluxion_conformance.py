"""Run flux-sched's resource-query test cases against fluxnb's resource-query.

Each case of ``../shared/conformance/fluxion/cases.json`` feeds its command
file (``@TEST_SRCDIR@`` replaced by the fluxion/ directory) to
``resource_query.main(args + ["-t", OUT])`` and compares OUT with the
expected file byte for byte, ignoring timing and visit-count INFO lines.
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from fluxnb.cli import resource_query

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "fluxion"
_DROP = re.compile(r"^INFO: (ELAPSE|PREORDER VISIT COUNT|POSTORDER VISIT COUNT)=")

# Cases expected to fail (expected-file stem -> reason), run as strict xfail.
_XFAIL: dict[str, str] = {}


def _cases() -> list:
    if not (SHARED / "cases.json").exists():
        return []
    out = []
    for c in json.loads((SHARED / "cases.json").read_text()):
        exp = c["expected"].split("expected/", 1)[1].removesuffix(".R.out")
        pol = c["args"][c["args"].index("-P") + 1]
        cid = f"{exp}-{pol}"
        marks = [pytest.mark.xfail(reason=_XFAIL[exp], strict=True)] if exp in _XFAIL else []
        out.append(pytest.param(c, id=cid, marks=marks))
    return out


def _filtered(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not _DROP.match(line))


@pytest.mark.skipif(not SHARED.exists(), reason="shared conformance data not present")
@pytest.mark.parametrize("case", _cases())
def test_resource_query_case(case: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = [str(SHARED / a) if a.startswith("data/") else a for a in case["args"]]
    cmds = (SHARED / case["commands"]).read_text().replace("@TEST_SRCDIR@", str(SHARED))
    out = tmp_path / "out.R"
    monkeypatch.setattr(sys, "stdin", io.StringIO(cmds))
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert resource_query.main(args + ["-d", "-t", str(out)]) == 0
    expected = (SHARED / case["expected"]).read_text()
    assert _filtered(out.read_text()) == _filtered(expected)
