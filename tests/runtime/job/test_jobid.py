"""RFC 19 job ids: JobID encodings and the FLUID generator."""

from __future__ import annotations

import json
import locale
import pickle
from pathlib import Path

import pytest

from fluxnb.runtime.job.jobid import FluidGenerator, JobID, id_encode, id_parse


def _conformance() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").exists():
            return parent.parent / "shared" / "conformance"
    raise RuntimeError("repository root not found")


VECTORS = json.loads((_conformance() / "jobid_f58.json").read_text(encoding="utf-8"))
ENCODINGS = ("dec", "hex", "dothex", "kvs", "words", "f58", "f58plain")


@pytest.fixture
def utf8(monkeypatch):
    """A UTF-8 locale without FLUX_F58_FORCE_ASCII: F58 prints with 'ƒ'."""
    monkeypatch.delenv("FLUX_F58_FORCE_ASCII", raising=False)
    monkeypatch.setattr(locale, "getpreferredencoding", lambda do_setlocale=True: "UTF-8")


# -- conformance vectors (jobid_f58.json) ----------------------------------


@pytest.mark.parametrize("value, text", VECTORS["pairs"], ids=[p[1] for p in VECTORS["pairs"]])
def test_f58_pairs(utf8, value, text):
    ascii_text = "f" + text[1:]
    assert JobID(value).f58 == text
    assert str(JobID(value)) == text
    assert JobID(value).f58plain == ascii_text
    assert JobID(text) == value
    assert JobID(ascii_text) == value


@pytest.mark.parametrize("text, value", VECTORS["decode_only"])
def test_f58_decode_only(text, value):
    assert JobID(text) == value


@pytest.mark.parametrize("text", VECTORS["invalid"], ids=repr)
def test_f58_invalid(text):
    with pytest.raises(ValueError) as exc:
        JobID(text)
    assert repr(text) in str(exc.value)


def test_alphabet_matches_conformance():
    alphabet = VECTORS["alphabet"]
    for value, digit in enumerate(alphabet):
        assert JobID("f" + digit) == value
        assert JobID(value).f58plain == "f" + digit


def test_fluid_layout_matches_conformance():
    # "timestamp_ms (40 bits) << 24 | generator_id (14 bits) << 10 | sequence (10 bits)"
    assert "40 bits" in VECTORS["fluid_layout"] and "14 bits" in VECTORS["fluid_layout"]
    fluid = FluidGenerator.compose(timestamp=5, gen_id=3, seq=7)
    assert fluid == (5 << 24) | (3 << 10) | 7
    assert FluidGenerator.decompose(fluid) == (5, 3, 7)


# -- flux-core's documented encodings (t/python/t0010-job.py) --------------

FLUX_CORE_CASES = [
    (0, "0x0", "0000.0000.0000.0000", "academy-academy-academy--academy-academy-academy", "ƒ1"),
    (1, "0x1", "0000.0000.0000.0001", "acrobat-academy-academy--academy-academy-academy", "ƒ2"),
    (65535, "0xffff", "0000.0000.0000.ffff",
     "nevada-archive-academy--academy-academy-academy", "ƒLUv"),
    (6787342413402046, "0x181d0d4d850fbe", "0018.1d0d.4d85.0fbe",
     "cake-plume-nepal--neuron-pencil-academy", "ƒuzzybunny"),
    (18446744073709551614, "0xfffffffffffffffe", "ffff.ffff.ffff.fffe",
     "mustang-analyze-verbal--natural-analyze-verbal", "ƒjpXCZedGfVP"),
    (18446744073709551615, "0xffffffffffffffff", "ffff.ffff.ffff.ffff",
     "natural-analyze-verbal--natural-analyze-verbal", "ƒjpXCZedGfVQ"),
]


@pytest.mark.parametrize("value, hexs, dothex, words, f58", FLUX_CORE_CASES,
                         ids=[str(c[0]) for c in FLUX_CORE_CASES])
def test_flux_core_encodings(utf8, value, hexs, dothex, words, f58):
    jobid = JobID(value)
    assert jobid.dec == str(value)
    assert jobid.hex == hexs
    assert jobid.dothex == dothex
    assert jobid.kvs == "job." + dothex
    assert jobid.words == words
    assert jobid.f58 == f58
    for text in (str(value), hexs, dothex, "job." + dothex, words, f58, "f" + f58[1:]):
        parsed = JobID(text)
        assert parsed == value
        assert repr(parsed) == f"JobID({value})"
        assert parsed.orig == text


@pytest.mark.parametrize("value", [0, 1, 57, 58, 1234, 2**32 - 1, 2**32, 2**40 + 17, 2**64 - 1])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_form_round_trips(value, encoding):
    text = id_encode(value, encoding)
    assert id_parse(text) == value
    assert JobID(text) == value


def test_jobid_is_an_int():
    jobid = JobID("fNH")
    assert isinstance(jobid, int)
    assert jobid + 1 == 1235
    assert {jobid: 1}[1234] == 1
    assert JobID(JobID(1234)) == 1234
    assert JobID(JobID(1234)).orig == "1234"
    assert pickle.loads(pickle.dumps(jobid)) == jobid
    assert type(pickle.loads(pickle.dumps(jobid))) is JobID


def test_parse_tolerates_whitespace_and_case_in_words():
    assert JobID("  1234 ") == 1234
    assert JobID(" fNH") == 1234
    assert JobID("ACROBAT-academy-academy--academy-academy-academy") == 1


# -- ASCII mode -------------------------------------------------------------


def test_force_ascii_env(monkeypatch, utf8):
    monkeypatch.setenv("FLUX_F58_FORCE_ASCII", "1")
    assert JobID(1234).f58 == "fNH"
    assert str(JobID(1234)) == "fNH"


def test_non_utf8_locale_uses_ascii(monkeypatch):
    monkeypatch.delenv("FLUX_F58_FORCE_ASCII", raising=False)
    monkeypatch.setattr(locale, "getpreferredencoding",
                        lambda do_setlocale=True: "ANSI_X3.4-1968")
    assert JobID(1234).f58 == "fNH"


def test_utf8_locale_uses_florin(utf8):
    assert JobID(1234).f58 == "ƒNH"
    assert JobID(1234).f58plain == "fNH"


# -- invalid ids ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "-1",
        "0x",
        "0xg",
        "12a",
        "18446744073709551616",  # 2**64
        "0x10000000000000000",
        "0000.0000.0000",  # three groups
        "0000.0000.0000.00000",  # 5 hex digits
        "job.",
        "academy-academy",  # too few words
        "academy-academy-academy--academy-academy-smurf",
        "yes-academy-academy--academy-academy-academy",  # 24-bit remainder word
        "f",
        "fjpXCZedGfVQ11",  # too many digits
    ],
)
def test_invalid_strings(text):
    with pytest.raises(ValueError) as exc:
        JobID(text)
    assert repr(text) in str(exc.value)


@pytest.mark.parametrize("value", [-1, 2**64])
def test_out_of_range_ints(value):
    with pytest.raises(ValueError):
        JobID(value)


def test_non_str_non_int():
    with pytest.raises(TypeError):
        JobID(1.5)
    with pytest.raises(TypeError):
        JobID(True)


def test_unknown_encoding():
    with pytest.raises(ValueError, match="unknown job id encoding"):
        JobID(1).encode("roman")


# -- FLUID generator --------------------------------------------------------


class FakeClock:
    def __init__(self, now: int = 1000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_fluids_unique_and_increasing_in_a_burst():
    clock = FakeClock()
    gen = FluidGenerator(gen_id=5, start_timestamp=0, clock=clock)
    ids = [gen.next() for _ in range(5000)]  # far more than 1024 per ms
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(FluidGenerator.decompose(i)[1] == 5 for i in ids)
    seqs = [FluidGenerator.decompose(i)[2] for i in ids]
    assert max(seqs) == 1023


def test_fluid_timestamp_follows_clock():
    clock = FakeClock(1000)
    gen = FluidGenerator(gen_id=0, start_timestamp=500, clock=clock)
    first = gen.next()
    assert FluidGenerator.decompose(first) == (500, 0, 0)
    clock.now += 250
    assert FluidGenerator.decompose(gen.next()) == (750, 0, 0)
    assert gen.timestamp == 750


def test_fluid_real_clock_monotonic():
    gen = FluidGenerator(gen_id=1)
    ids = [gen.next() for _ in range(3000)]
    assert ids == sorted(set(ids))
    assert [next(gen) for _ in range(2)][0] > ids[-1]


@pytest.mark.parametrize("floor_gen", [0, 7, 100])
def test_fluid_resume_floor(floor_gen):
    floor = FluidGenerator.compose(timestamp=10_000, gen_id=floor_gen, seq=1023)
    # After a restart the clock (and saved timestamp) may be behind the floor.
    gen = FluidGenerator(gen_id=7, start_timestamp=0, floor=floor, clock=FakeClock())
    ids = [gen.next() for _ in range(2000)]
    assert ids[0] > floor
    assert ids == sorted(set(ids))


def test_fluid_resume_method():
    gen = FluidGenerator(gen_id=2, clock=FakeClock())
    low = gen.next()
    floor = FluidGenerator.compose(timestamp=99, gen_id=2, seq=3)
    gen.resume(floor)
    assert gen.next() == FluidGenerator.compose(99, 2, 4)
    gen.resume(low)  # a lower floor changes nothing
    assert gen.next() == FluidGenerator.compose(99, 2, 5)


def test_fluid_generator_rejects_bad_ids():
    with pytest.raises(ValueError):
        FluidGenerator(gen_id=1 << 14)
    with pytest.raises(ValueError):
        FluidGenerator(gen_id=-1)


def test_fluids_are_valid_jobids():
    gen = FluidGenerator(gen_id=3, start_timestamp=123456)
    fluid = gen.next()
    assert JobID(JobID(fluid).f58plain) == fluid


def test_emoji_encoding_matches_flux_core():
    # values from flux-core's t0010-job.py
    from fluxnb.runtime.job.jobid import JobID
    for value, emoji in [(0, "😃"), (1, "😄"), (65535, "💁📚"),
                         (6787342413402046, "👴😱🔚🎮🕙🚩")]:
        assert JobID(value).emoji == emoji
        assert JobID(emoji) == value
    with pytest.raises(ValueError, match="not one of the 576 emoji"):
        JobID("😃🦄")
