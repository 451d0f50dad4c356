"""RFC 23 Flux Standard Duration (FSD).

An FSD is a string ``N[SUFFIX]`` where ``N`` is a non-negative floating point
number and ``SUFFIX`` is one of ``ms``, ``s`` (or none: seconds), ``m``, ``h``,
``d``. The special string ``infinity`` (and ``inf``) means an unbounded
duration.

Examples
--------
>>> parse_fsd("1.5m")
90.0
>>> parse_fsd("2h")
7200.0
>>> format_fsd(90)
'1.5m'
>>> format_fsd(0.01)
'0.01s'
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_fsd", "format_fsd", "FSD_MULTIPLIERS"]

#: Seconds per unit suffix (RFC 23). No suffix means seconds.
FSD_MULTIPLIERS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}

# A C99 strtod-style decimal number, without sign games Python's float()
# would also accept (underscores, "nan").
_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_FSD_RE = re.compile(
    rf"^\s*\+?(?P<num>{_NUMBER}|inf(?:inity)?)(?P<unit>ms|s|m|h|d)?\s*$",
    re.IGNORECASE,
)


def parse_fsd(fsd: str | int | float) -> float:
    """Parse a Flux Standard Duration into seconds.

    Parameters
    ----------
    fsd : str or number
        An RFC 23 duration such as ``"30"``, ``"5s"``, ``"1.5m"``, ``"2h"``,
        ``"1d"``, ``"250ms"`` or ``"infinity"``. A plain number (int or float)
        is taken as seconds.

    Returns
    -------
    float
        The duration in seconds (``math.inf`` for ``infinity``).

    Raises
    ------
    ValueError
        If ``fsd`` is negative, NaN, has an unknown suffix, or is not a
        duration at all. The message names the offending string.

    Examples
    --------
    >>> parse_fsd("5s"), parse_fsd("1d"), parse_fsd(10)
    (5.0, 86400.0, 10.0)
    >>> parse_fsd("infinity")
    inf
    >>> parse_fsd("10h5m")
    Traceback (most recent call last):
    ...
    ValueError: invalid Flux Standard Duration '10h5m': expected N[ms|s|m|h|d]
    """
    if isinstance(fsd, bool):
        raise TypeError(f"invalid Flux Standard Duration {fsd!r}: not a number")
    if isinstance(fsd, (int, float)):
        value = float(fsd)
        if math.isnan(value) or value < 0:
            raise ValueError(
                f"invalid Flux Standard Duration {fsd!r}: must be a number >= 0"
            )
        return value
    if not isinstance(fsd, str):
        raise TypeError(
            f"invalid Flux Standard Duration {fsd!r}: "
            f"expected a string, not {type(fsd).__name__}"
        )
    if fsd.lstrip().startswith("-"):
        raise ValueError(f"invalid Flux Standard Duration {fsd!r}: must not be negative")
    match = _FSD_RE.match(fsd)
    if match is None:
        raise ValueError(
            f"invalid Flux Standard Duration {fsd!r}: expected N[ms|s|m|h|d]"
        )
    num, unit = match.group("num"), match.group("unit")
    if unit is not None and unit not in FSD_MULTIPLIERS:
        # Units are case sensitive (RFC 23): "5M" is not five minutes.
        raise ValueError(
            f"invalid Flux Standard Duration {fsd!r}: unknown unit {unit!r}"
        )
    value = math.inf if num.lower().startswith("inf") else float(num)
    return value * FSD_MULTIPLIERS[unit or "s"]


def _fmt_g(value: float) -> str:
    # C printf "%g": 6 significant digits, trailing zeros dropped.
    return f"{value:g}"


def format_fsd(seconds: int | float) -> str:
    """Format a duration in seconds as a Flux Standard Duration string.

    Chooses the largest unit that keeps the number at or above one, as
    flux-core's ``fsd_format_duration()`` does: seconds below a minute,
    minutes below an hour, hours below a day, else days.

    Parameters
    ----------
    seconds : int or float
        Duration in seconds, ``>= 0``. ``math.inf`` formats as ``infinity``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If ``seconds`` is negative or NaN.

    Examples
    --------
    >>> format_fsd(90), format_fsd(7200), format_fsd(0), format_fsd(86400 * 3)
    ('1.5m', '2h', '0s', '3d')
    >>> format_fsd(float("inf"))
    'infinity'
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"duration must be a number of seconds, not {seconds!r}")
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {seconds!r}: must be a number >= 0")
    if math.isinf(seconds):
        return "infinity"
    if seconds < 60:
        return _fmt_g(seconds) + "s"
    if seconds < 3600:
        return _fmt_g(seconds / 60) + "m"
    if seconds < 86400:
        return _fmt_g(seconds / 3600) + "h"
    return _fmt_g(seconds / 86400) + "d"
