"""``flux.resource.ResourceCount``: an RFC 14/45 resource count (an integer,
a range ``min-max[:operand[:operator]]``, ``min+``, an idset, or a dict with
``min``, ``max``, ``operand``, ``operator``)."""

from __future__ import annotations

import re

from flux.idset import IDset

__all__ = ["ResourceCount"]

_RANGE = re.compile(r"(\d+)(?:(\+)|-(\d+))(?::(\d+)(?::(.))?)?\Z")


class ResourceCount:
    """The counts a request accepts: ``min`` to ``max`` (None: unbounded),
    limited to ``values`` (an IDset) when not contiguous.

    >>> list(ResourceCount.from_count_spec("2-16:2:^").valid_counts(16))
    [16, 4, 2]
    """

    def __init__(self, min, max=None, values=None):
        self.min = min
        self.max = max
        self._values = values

    @classmethod
    def from_count_spec(cls, spec):
        """A ResourceCount from an int, a string or a dict; ValueError
        naming what is wrong otherwise."""
        if isinstance(spec, bool):
            raise ValueError(f"invalid count {spec!r}")
        if isinstance(spec, int):
            return cls._make(spec, spec, 1, "+", spec)
        if isinstance(spec, dict):
            return cls._make(spec.get("min", 1), spec.get("max"), spec.get("operand", 1),
                             spec.get("operator", "+"), spec)
        if not isinstance(spec, str):
            raise TypeError(f"count must be int, str or dict, not {type(spec).__name__}")
        text = spec.strip()
        if text.startswith("[") != text.endswith("]"):
            raise ValueError(f"invalid count '{spec}': mismatched brackets")
        if text.startswith("["):
            text = text[1:-1]
        if re.fullmatch(r"\d+", text):
            n = int(text)
            return cls._make(n, n, 1, "+", spec)
        m = _RANGE.match(text)
        if m:
            lo, plus, hi, operand, operator = m.groups()
            return cls._make(int(lo), None if plus else int(hi),
                             int(operand) if operand else 1, operator or "+", spec)
        if re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)+", text):
            try:
                ids = IDset(text)
            except ValueError:
                raise ValueError(f"invalid count '{spec}'") from None
            if ids.first() < 1:
                raise ValueError(f"invalid count '{spec}': counts must be >= 1")
            return cls(ids.first(), ids.last(), ids)
        raise ValueError(f"invalid count '{spec}'")

    @classmethod
    def _make(cls, lo, hi, operand, operator, spec):
        for name, v in (("min", lo), ("max", hi), ("operand", operand)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise ValueError(f"count {spec!r}: {name} must be an integer")
        if lo < 1:
            raise ValueError(f"count {spec!r}: min must be >= 1")
        if hi is not None and hi < lo:
            raise ValueError(f"count {spec!r}: max must be >= min")
        if operator not in ("+", "*", "^"):
            raise ValueError(f"count {spec!r}: unknown operator '{operator}' (use +, * or ^)")
        if operator == "+" and operand < 1 or operator in "*^" and operand < 2:
            raise ValueError(f"count {spec!r}: operand {operand} invalid for '{operator}'")
        if operator == "^" and lo < 2:
            raise ValueError(f"count {spec!r}: min must be >= 2 with operator '^'")
        if hi is None:
            if operand != 1 or operator != "+":
                raise ValueError(f"count {spec!r}: an unbounded count must step by 1")
            return cls(lo, None)
        if operator == "+" and operand == 1 or lo == hi:
            return cls(lo, hi)
        values, cur = [], lo
        while cur <= hi:
            values.append(cur)
            cur = cur + operand if operator == "+" else (
                cur * operand if operator == "*" else cur ** operand)
        return cls(lo, hi, IDset(values))

    def valid_counts(self, available):
        """The acceptable counts not above ``available``, largest first."""
        cap = available if self.max is None else min(self.max, available)
        if self._values is not None:
            return (v for v in reversed(self._values.expand()) if self.min <= v <= cap)
        return iter(range(cap, self.min - 1, -1))

    def scaled(self, factor):
        """This count multiplied by ``factor`` (self when factor is 1)."""
        if factor == 1:
            return self
        values = None
        if self._values is not None:
            values = IDset([v * factor for v in self._values])
        return ResourceCount(self.min * factor,
                             None if self.max is None else self.max * factor, values)

    def __repr__(self):
        return f"ResourceCount({self.min}, {self.max})"
