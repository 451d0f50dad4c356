"""simpleyaml reads what PyYAML's safe loader reads, or leaves the text to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fluxnb.runtime.sched.fluxion import simpleyaml
from fluxnb.runtime.sched.fluxion.request import parse_request

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "conformance"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _same(a, b) -> bool:
    """Equal, with the same types and key order throughout (``True == 1`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _check(text: str) -> bool:
    """Assert simpleyaml agrees with PyYAML on ``text``; True if it read it itself."""
    fast = simpleyaml.load(text)
    if fast is None:
        return False
    assert _same(fast, yaml.load(text, Loader=_Loader)), text  # noqa: S506 (a safe loader)
    return True


@pytest.mark.skipif(not SHARED.exists(), reason="shared conformance data not present")
def test_every_corpus_jobspec_reads_as_pyyaml_reads_it():
    files = sorted(SHARED.rglob("*.yaml"))
    assert len(files) > 100
    read = sum(_check(f.read_text()) for f in files)
    # most of the corpus is in the subset: the fast path is the one matches take
    assert read > len(files) // 2


def _bench_match():
    """bench/match.py, whose jobspecs resource-query's benchmark times (the same text)."""
    import importlib.util
    path = Path(__file__).resolve().parents[3] / "bench" / "match.py"
    spec = importlib.util.spec_from_file_location("bench_match", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_jobspec_is_read_by_the_subset_and_parses_the_same():
    node = _bench_match().NODE_YAML
    assert _check(node)
    fast = parse_request(node)
    slow = parse_request(yaml.load(node, Loader=_Loader))  # noqa: S506
    assert fast.key() == slow.key() and fast.duration == slow.duration == 3600
    assert fast.task_slots == slow.task_slots == ["task"]


@pytest.mark.parametrize("text", [
    "a: 1\nb: [1, 'x', \"y\", true, 2.5, -3]\n",
    "- a\n- - b\n  - c\n- d: 1\n  e: [ ]\n",
    "k:\n- 1\n- 2\nz: 0\n",
    "key : value\n",
    "a:\n    b: 1\n    c:\n      - x\n",
    "# only comments\n\n# here\nv: 1\n",
    "a: /bin/true\nb: some.name-1\nc: TRUE\nd: False\ne: 0\nf: -0.5\n",
    "a: yes\n", "a: on\n", "a: y\n", "a: null\n", "a: ~\n", "on: 1\n", "a: 010\n", "a: 1_000\n",
    "a: 0x1f\n", "a: 1e3\n", "a: 3600.\n", "a: .5\n", "a: .inf\n", "a: 1:20\n", "a: 2001-12-14\n",
    "a: b c\n", "a: 'it''s'\n", 'a: "x\\ty"\n', "a: [1, [2]]\n", "a: [1,]\n", "a: {b: 1}\n",
    "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: |\n  text\n", "a: >\n  text\n", "a: 1 # c\n",
    "a: 1\na: 2\n", "a:\nb: 1\n", "a:\n", "a: 1\n  b: 2\n", "a: b\n  c\n", "- a\n  - b\n",
    "---\na: 1\n", "a: 1\n...\n", "? a\n: 1\n", "a:\tb\n", "a: 1\r\n", "\ufeffa: 1\n",
    "a: caf\u00e9\n", "a: \"\u2028\"\n", "", "   \n", "plain\n", "[1, 2]\n", "a: [1, 2\n",
    "a:\n  - 1\n - 2\n", "- 1\n-2\n", "a: b: c\n", "a:b: 1\n", "'a': 1\n", "1: a\n",
])
def test_small_documents_agree_or_fall_back(text):
    try:
        yaml.load(text, Loader=_Loader)  # noqa: S506
    except yaml.YAMLError:
        assert simpleyaml.load(text) is None  # invalid YAML is PyYAML's to report
        return
    _check(text)


def test_what_is_left_to_pyyaml():
    # YAML 1.1 resolves these to something else than a decimal or a string: not guessed here
    for text in ("a: 010\n", "a: yes\n", "a: 1_000\n", "a: 3600.\n", "a: null\n", "a: 1 # c\n",
                 "a: 1\na: 2\n", "a: 'it''s'\n", "a: &x 1\n"):
        assert simpleyaml.load(text) is None, text
    # and these it reads
    assert simpleyaml.load("a: [ \"app\" ]\nb: TRUE\nc: -0.5\n") == {"a": ["app"], "b": True, "c": -0.5}
