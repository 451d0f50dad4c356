"""RFC 46 job shape syntax -> an RFC 14 ``resources`` list.

::

    list   : '[' vertex (';' vertex)* ']' | vertex
    vertex : 'slot' ('=' count)? ('{' label (',' item)* '}')? '/' list
           | type ('=' count)? ('{' item (',' item)* '}')? ('/' list)?
    item   : key ':' value | ('+'|'-')? key          ('x' is 'exclusive')

>>> ShapeParser().parse("slot=2{db}/node{-x}/core=4")
[{'type': 'slot', 'count': 2, 'label': 'db', 'with': [{'type': 'node', 'count': 1, 'exclusive': False, 'with': [{'type': 'core', 'count': 4}]}]}]
"""

from __future__ import annotations

import json
import re

__all__ = ["ShapeParser", "ShapeSyntaxError"]


class ShapeSyntaxError(Exception):
    """A job shape that is not valid RFC 46 syntax."""


_TYPE = re.compile(r"[^={}\[\]/;\s\"']+")
_COUNT = re.compile(r"[^{}/;\]\s]+")
_INT = re.compile(r"[1-9]\d*\Z")
_RANGE = re.compile(r"[1-9]\d*((\+|-[1-9]\d*)(:[1-9]\d*)?(:[+*^])?|(,[1-9]\d*(-[1-9]\d*)?)+)\Z")
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d*)?([eE][-+]?\d+)?\Z")


def _split_items(body):
    """Split ``a,b:[1,2],c`` at commas outside brackets."""
    items, depth, cur = [], 0, ""
    for c in body:
        if c == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
            continue
        depth += c == "["
        depth -= c == "]"
        cur += c
    items.append(cur.strip())
    return items


class ShapeParser:
    """Parse RFC 46 shapes with ``parse()``; raises ShapeSyntaxError."""

    def __init__(self, lexer=None, optimize=True, debug=False, write_tables=False, **kw):
        self.query = None
        self.default_slot_label = "task"
        self.range_as_dict = False

    def parse(self, query, **kw_args):
        if not isinstance(query, str):
            raise TypeError(f"shape must be a str, not {type(query).__name__}")
        self.query, self._s, self._pos = query, query, 0
        result = self._list()
        self._ws()
        if self._pos < len(self._s):
            self._fail(f"Invalid token '{self._s[self._pos]}'")
        return result

    # -- helpers -----------------------------------------------------------
    def _fail(self, what):
        if self._pos >= len(self._s):
            raise ShapeSyntaxError(f"{what}: unexpected end of input in '{self.query}'")
        raise ShapeSyntaxError(f"{what} at position {self._pos} in '{self.query}'")

    def _ws(self):
        while self._pos < len(self._s) and self._s[self._pos].isspace():
            self._pos += 1

    def _peek(self):
        self._ws()
        return self._s[self._pos] if self._pos < len(self._s) else ""

    def _expect(self, c):
        if self._peek() != c:
            self._fail(f"expected '{c}'")
        self._pos += 1

    def _match(self, rx):
        self._ws()
        m = rx.match(self._s, self._pos)
        if not m:
            return None
        self._pos = m.end()
        return m.group()

    # -- grammar -----------------------------------------------------------
    def _list(self):
        if self._peek() == "[":
            self._pos += 1
            items = [self._vertex()]
            while self._peek() == ";":
                self._pos += 1
                items.append(self._vertex())
            self._expect("]")
            return items
        return [self._vertex()]

    def _vertex(self):
        rtype = self._match(_TYPE)
        if rtype is None:
            self._fail("expected a resource type")
        slot = rtype.lower() == "slot"
        vertex = {"type": "slot" if slot else rtype, "count": 1}
        if self._peek() == "=":
            self._pos += 1
            vertex["count"] = self._count()
        if slot:
            vertex["label"] = self.default_slot_label
        if self._peek() == "{":
            self._dict(vertex, slot)
        if self._peek() == "/":
            self._pos += 1
            vertex["with"] = self._list()
        elif slot:
            self._fail("slot must have children ('slot/...')")
        return vertex

    def _count(self):
        bracket = self._peek() == "["
        if bracket:
            self._pos += 1
        text = self._match(_COUNT)
        if text is None:
            self._fail("expected a count")
        if bracket:
            self._expect("]")
        if _INT.match(text):
            return int(text)
        if not _RANGE.match(text):
            raise ShapeSyntaxError(f"invalid count '{text}' in '{self.query}'")
        return text

    def _dict(self, vertex, slot):
        self._expect("{")
        start = self._pos - 1
        end = self._s.find("}", self._pos)
        if end < 0:
            raise ShapeSyntaxError(f"Unclosed brace in position {start}")
        body = self._s[self._pos:end]
        self._pos = end + 1
        if "{" in body:
            raise ShapeSyntaxError(f"Unexpected '{{' inside braces at position {start}")
        items = _split_items(body) if body.strip() else []
        if slot:
            if not items or ":" in items[0] or items[0][:1] in "+-":
                raise ShapeSyntaxError(f"slot braces must start with a label at position "
                                       f"{start} in '{self.query}'")
            vertex["label"] = self._key(items.pop(0))  # as flux-core: {x} -> "exclusive"
        for item in items:
            if not item:
                raise ShapeSyntaxError(f"empty item in braces at position {start}")
            key, colon, value = item.partition(":")
            key = key.strip()
            if colon:
                if not value.strip():
                    raise ShapeSyntaxError(f"missing value for '{key}' in '{self.query}'")
                vertex[self._key(key)] = self._value(value.strip())
            elif key[0] in "+-":
                vertex[self._key(key[1:])] = key[0] == "+"
            else:
                vertex[self._key(key)] = True

    def _key(self, key):
        if not key:
            raise ShapeSyntaxError(f"missing key in braces in '{self.query}'")
        return "exclusive" if key == "x" else key

    @staticmethod
    def _value(value):
        if value.startswith("["):
            return json.loads(value.replace("'", '"'))
        low = value.lower()
        if low in ("true", "false"):
            return low == "true"
        if low == "null":
            return None
        if _NUMBER.match(value):
            try:
                return int(value)
            except ValueError:
                return float(value)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            return value[1:-1]
        return value
