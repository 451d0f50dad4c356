"""RFC 23 Flux Standard Duration: parse_fsd / format_fsd."""

from __future__ import annotations

import math

import pytest

from fluxnb.runtime.util.fsd import format_fsd, parse_fsd


@pytest.mark.parametrize(
    "fsd, seconds",
    [
        ("0", 0.0),
        ("30", 30.0),  # no suffix: seconds
        ("5s", 5.0),
        ("1.5m", 90.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("250ms", 0.25),  # RFC 23 milliseconds
        ("0.5", 0.5),
        (".5m", 30.0),
        ("1e2", 100.0),  # strtod forms are allowed
        ("1e1s", 10.0),
        ("100.5s", 100.5),
    ],
)
def test_parse(fsd, seconds):
    assert parse_fsd(fsd) == pytest.approx(seconds)


@pytest.mark.parametrize("fsd", ["infinity", "inf", "INF", "Infinity"])
def test_parse_infinity(fsd):
    assert parse_fsd(fsd) == math.inf


def test_parse_numbers_are_seconds():
    assert parse_fsd(42) == 42.0
    assert parse_fsd(1.25) == 1.25


@pytest.mark.parametrize(
    "bad", ["", "m", "-1", "-1s", "10h5m", "5x", "5M", "5 m s", "nan", "1_000", "abc", "s5"]
)
def test_parse_errors_name_the_string(bad):
    with pytest.raises(ValueError) as exc:
        parse_fsd(bad)
    assert repr(bad) in str(exc.value)


def test_parse_rejects_non_strings():
    with pytest.raises(TypeError):
        parse_fsd([1])
    with pytest.raises(TypeError):
        parse_fsd(True)
    with pytest.raises(ValueError):
        parse_fsd(-5)


@pytest.mark.parametrize(
    "seconds, fsd",
    [
        (0, "0s"),
        (0.01, "0.01s"),
        (59, "59s"),
        (60, "1m"),
        (90, "1.5m"),
        (3599, "59.9833m"),  # %g keeps 6 significant digits
        (3600, "1h"),
        (7200, "2h"),
        (86400, "1d"),
        (86400 * 2.5, "2.5d"),
        (math.inf, "infinity"),
    ],
)
def test_format(seconds, fsd):
    assert format_fsd(seconds) == fsd


@pytest.mark.parametrize("seconds", [0, 0.5, 1.5, 90, 5400, 86400, 1e6])
def test_format_parse_round_trip(seconds):
    assert parse_fsd(format_fsd(seconds)) == pytest.approx(seconds, rel=1e-5)


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_format_rejects_negative_and_nan(bad):
    with pytest.raises(ValueError):
        format_fsd(bad)
