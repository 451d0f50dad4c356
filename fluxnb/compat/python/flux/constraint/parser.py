"""RFC 35 constraint query syntax -> RFC 31 constraint objects.

A term is ``[operator:]operand`` (quoted operands may hold spaces and
``()|&``); terms join by AND (``&``, ``&&``, ``and`` or just a space) or OR
(``|``, ``||``, ``or``), AND binding tighter; ``-term`` negates one term and
``not EXPR`` an expression; parentheses group.

>>> class P(ConstraintParser):
...     operator_map = {None: "properties"}
>>> P().parse("a -b | host:x")
{'or': [{'and': [{'properties': ['a']}, {'not': [{'properties': ['b']}]}]}, {'host': ['x']}]}
"""

from __future__ import annotations

import re

__all__ = ["ConstraintParser", "ConstraintSyntaxError"]


class ConstraintSyntaxError(Exception):
    """A constraint query that is not valid RFC 35 syntax."""


_RULES = [
    ("NEGATE", re.compile(r"-")),
    ("NOT", re.compile(r"not\b")),
    ("AND", re.compile(r"&{1,2}|and\b")),
    ("OR", re.compile(r"\|{1,2}|or\b")),
    ("LPAREN", re.compile(r"\(")),
    ("RPAREN", re.compile(r"\)")),
    ("TOKEN", re.compile(r"[^()|&\s\"']+")),
]


def _lex(query: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pending: str | None = None
    pos, n = 0, len(query)
    while pos < n:
        c = query[pos]
        if c.isspace():
            pos += 1
            continue
        if c in "'\"":
            end = query.find(c, pos + 1)
            if end < 0:
                raise ConstraintSyntaxError(f"Unclosed quote {c!r} at position {pos + 1}")
            kind, value, start = "TOKEN", query[pos + 1:end], pos
            pos = end + 1
            if not value:
                continue
        else:
            for kind, rx in _RULES:
                m = rx.match(query, pos)
                if m:
                    break
            else:  # pragma: no cover - TOKEN matches anything else
                raise ConstraintSyntaxError(f"Illegal character '{c}' at position {pos}")
            value, start = m.group(), pos
            pos = m.end()
        if kind == "TOKEN":
            if pending is not None:
                value, pending = pending + value, None
            elif value.endswith(":"):
                pending = value
                continue
        tokens.append((kind, value, start))
    if pending is not None:
        raise ConstraintSyntaxError(f"Missing argument to token '{pending}'")
    return tokens


class ConstraintParser:
    """RFC 35 parser; subclasses set ``operator_map`` (``None`` maps the
    default operator), ``split_values`` (operator -> separator) and
    ``combined_terms`` (operators whose AND-ed values merge into one term).
    ``parse()`` returns the RFC 31 dict or raises ConstraintSyntaxError."""

    operator_map: dict = {}
    split_values: dict = {}
    combined_terms: set = set()

    def __init__(self, lexer=None, optimize=True, debug=False, write_tables=False, **kw):
        self.query = None

    def parse(self, query, **kw_args):
        if not isinstance(query, str):
            raise TypeError(f"constraint query must be a str, not {type(query).__name__}")
        self.query = query
        self._toks = _lex(query)
        self._i = 0
        if not self._toks:
            raise ConstraintSyntaxError(f"Unexpected end of input in '{query}'")
        result = self._expr()
        if self._i < len(self._toks):
            kind, value, pos = self._toks[self._i]
            if kind == "RPAREN":
                raise ConstraintSyntaxError(f"Mismatched parentheses at position {pos}")
            raise ConstraintSyntaxError(f"Invalid token '{value}' at position {pos}")
        return result

    # -- recursive descent -------------------------------------------------
    def _peek(self):
        return self._toks[self._i][0] if self._i < len(self._toks) else None

    def _take(self, kind):
        if self._peek() != kind:
            if self._i >= len(self._toks):
                raise ConstraintSyntaxError(f"Unexpected end of input in '{self.query}'")
            _, value, pos = self._toks[self._i]
            raise ConstraintSyntaxError(f"Invalid token '{value}' at position {pos}")
        tok = self._toks[self._i]
        self._i += 1
        return tok

    # Binding follows flux-core's LALR grammar: OR (1) < AND (2, also a
    # juxtaposition once formed) < NOT (3) < NEGATE (4). Whether an
    # expression continues past its right operand depends on the lookahead:
    # a term or "(" has no precedence, so "a|b c" is "(a|b) c", while "-"
    # and "not" bind: "a|b -c" is "a|(b -c)".
    _LOOKAHEAD = {"OR": (1, False), "AND": (2, False), "TOKEN": (0, False),
                  "LPAREN": (0, False), "NOT": (3, True), "NEGATE": (4, True)}

    def _expr(self, level=-1):
        left = self._unary()
        while True:
            kind = self._peek()
            if kind not in self._LOOKAHEAD:
                return left
            prec, right_assoc = self._LOOKAHEAD[kind]
            if not (prec > level or (prec == level and right_assoc)):
                return left
            if kind == "OR":
                self._i += 1
                right = self._expr(1)
                if "or" in left:
                    left["or"].append(right)
                else:
                    left = {"or": [left, right]}
                continue
            if kind == "AND":
                self._i += 1
            left = self.combine_like_terms(left, self._expr(2))

    def _unary(self):
        kind = self._peek()
        if kind == "NOT":
            self._i += 1
            return {"not": [self._expr(3)]}
        if kind == "NEGATE":
            self._i += 1
            return {"not": [self._term(self._take("TOKEN")[1])]}
        if kind == "LPAREN":
            _, _, pos = self._take("LPAREN")
            if self._i >= len(self._toks):
                raise ConstraintSyntaxError(f"Unclosed parenthesis in position {pos}")
            expr = self._expr()
            if self._i >= len(self._toks):
                raise ConstraintSyntaxError(f"Unclosed parenthesis in position {pos}")
            self._take("RPAREN")
            return expr
        return self._term(self._take("TOKEN")[1])

    def _term(self, token):
        op, colon, value = token.partition(":")
        if not colon:
            if None not in self.operator_map:
                raise ConstraintSyntaxError(f'Missing required operator in "{token}"')
            op, value = self.operator_map[None], token
        elif op in self.operator_map:
            op = self.operator_map[op]
        bad = self.invalid_operator(op)
        if bad:
            raise ConstraintSyntaxError(f"invalid character '{bad}' in operator '{op}:'")
        if op in self.split_values:
            return {op: value.split(self.split_values[op])}
        return {op: [value]}

    @staticmethod
    def invalid_operator(op):
        m = re.search(r"[^\w.+@-]", op)
        return m[0] if m else None

    def combine_like_terms(self, p1, p2):
        """AND two terms, merging values of operators in ``combined_terms``."""
        if "and" in p1:
            p1["and"].append(p2)
            return p1
        k1, k2 = next(iter(p1)), next(iter(p2))
        if k1 == k2 and k1 in self.combined_terms:
            p1[k1].extend(p2[k2])
            return p1
        return {"and": [p1, p2]}
