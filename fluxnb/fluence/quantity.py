"""Kubernetes resource quantities (``500m``, ``4Gi``, ``1e3``) and durations (``90s``, ``5m``).

A quantity is a number with an optional suffix, as Kubernetes' ``resource.Quantity``
reads it: binary suffixes ``Ki Mi Gi Ti Pi Ei`` (powers of 1024), decimal ``n u m k M G
T P E`` (powers of 1000; ``m`` is a thousandth), or a decimal exponent (``1e3``,
``2E6``).  CPU is counted in millicores, rounded up as the API server does; memory
and extended resources (``nvidia.com/gpu``) in whole units, rounded up.

Examples
--------
>>> parse_cpu("500m"), parse_cpu("2"), parse_cpu("0.25")
(500, 2000, 250)
>>> parse_bytes("4Gi"), parse_bytes("1G"), parse_bytes("128974848")
(4294967296, 1000000000, 128974848)
>>> parse_duration("5m"), parse_duration("1h30m"), parse_duration(90)
(300.0, 5400.0, 90.0)
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["QuantityError", "parse_quantity", "parse_cpu", "parse_bytes", "parse_count",
           "parse_duration"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QTY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$")
_DUR = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s)")
_DUR_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class QuantityError(ValueError):
    """A quantity or duration is not written as Kubernetes writes them."""


def parse_quantity(value: object, where: str = "quantity") -> Fraction:
    """The exact value of a Kubernetes quantity (a number or a string with a suffix).

    Raises
    ------
    QuantityError
        Naming ``where`` and what was given; negative quantities are refused.
    """
    if isinstance(value, bool):
        raise QuantityError(f"{where}: expected a quantity such as '500m' or '4Gi', got {value!r}")
    if isinstance(value, int):
        q = Fraction(value)
    elif isinstance(value, float):
        q = Fraction(str(value))
    elif isinstance(value, str):
        m = _QTY.match(value.strip())
        if not m:
            raise QuantityError(f"{where}: {value!r} is not a quantity (examples: '500m', '2', '4Gi', '1e3')")
        num, exp, suffix = m.groups()
        q = Fraction(num)
        if exp:
            q *= Fraction(10) ** int(exp[1:])
        elif suffix in _BINARY:
            q *= _BINARY[suffix]
        else:
            q *= _DECIMAL[suffix or ""]
    else:
        raise QuantityError(f"{where}: expected a quantity such as '500m' or '4Gi', got {value!r}")
    if q < 0:
        raise QuantityError(f"{where}: quantity must not be negative, got {value!r}")
    return q


def parse_cpu(value: object, where: str = "cpu") -> int:
    """CPU in millicores, rounded up (``"500m"`` -> 500, ``"2"`` -> 2000)."""
    return math.ceil(parse_quantity(value, where) * 1000)


def parse_bytes(value: object, where: str = "memory") -> int:
    """Memory in bytes, rounded up (``"4Gi"`` -> 4294967296)."""
    return math.ceil(parse_quantity(value, where))


def parse_count(value: object, where: str) -> int:
    """A whole count of an extended resource (``nvidia.com/gpu: 1``); fractions are refused."""
    q = parse_quantity(value, where)
    if q.denominator != 1:
        raise QuantityError(f"{where}: must be a whole number, got {value!r}")
    return int(q)


def parse_duration(value: object, where: str = "duration") -> float:
    """Seconds from a number or a Go-style duration string (``"90s"``, ``"5m"``, ``"1h30m"``)."""
    if isinstance(value, bool):
        raise QuantityError(f"{where}: expected a duration such as '90s' or 300, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise QuantityError(f"{where}: duration must not be negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        s = value.strip()
        try:
            return parse_duration(float(s), where)
        except ValueError:
            pass
        parts = _DUR.findall(s)
        if parts and "".join(n + u for n, u in parts) == s:
            return sum(float(n) * _DUR_UNIT[u] for n, u in parts)
    raise QuantityError(f"{where}: {value!r} is not a duration (examples: '90s', '5m', '1h30m', 300)")
