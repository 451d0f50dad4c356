"""Match policies: how candidates are scored and which are preferred.

Every policy scores a vertex when the depth-first match finishes it and, for
each requested child type, keeps the best *k* candidates:

``high`` / ``low``
    Prefer the highest / lowest vertex id (score ``1 + id + 1``).
``hinode`` / ``lonode``
    Node-centric variants: every vertex under a node also carries a large
    factor derived from the node's id, so whole nodes are preferred first.
``hinodex`` / ``lonodex``
    Node-centric and node-exclusive: a matched node is given to the job whole.
``first`` / ``firstnodex``
    ``hinode`` that stops exploring as soon as enough children matched
    (children visited in order of free resources, then highest uniq_id).
``variation``
    Variation aware: nodes scored by their ``perf_class`` property (1 best;
    missing or invalid counts as 9999) and the lowest classes preferred, so a
    job spans as few, and as good, performance classes as possible.
``locality``
    Prefer the subtree with the fewest free resources (pack jobs together).

Examples
--------
>>> p = make_policy("hinodex")
>>> p.descending, p.node_centric, sorted(p.exclusive_types)
(True, True, ['node'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .request import ResourceReq, calc_count
from .scoring import MATCH_MET, MATCH_UNMET, Scoring

__all__ = ["Policy", "make_policy", "POLICIES", "PolicyError"]

_NAMED = {
    "first": "policy=high node_centric=true stop_on_1_matches=true",
    "firstnodex": "policy=high node_centric=true node_exclusive=true stop_on_1_matches=true",
    "high": "policy=high",
    "low": "policy=low",
    "lonode": "policy=low node_centric=true",
    "hinode": "policy=high node_centric=true",
    "lonodex": "policy=low node_centric=true node_exclusive=true",
    "hinodex": "policy=high node_centric=true node_exclusive=true",
    "locality": "",
    "variation": "",
}
POLICIES = tuple(_NAMED)
_NODE_FACTOR_ADD = 1
_NODE_FACTOR_MUL = 10000


class PolicyError(ValueError):
    """Unknown match policy or malformed custom policy string."""


@dataclass
class Policy:
    """Scoring callbacks of one match policy (see module docstring)."""

    name: str
    descending: bool = True
    node_centric: bool = False
    stop_on_k: int = 0
    exclusive_types: set[str] = field(default_factory=set)
    kind: str = "id"  # "id" | "variation" | "locality"
    _level_scores: int = 0
    _node_factor: int = 0

    # -- hooks called by the traverser ------------------------------------------------
    def discover(self, v: object) -> None:
        if self.node_centric and v.type == "node":  # type: ignore[attr-defined]
            self._node_factor = self.node_factor(v)
            self._level_scores += self._node_factor

    def node_factor(self, v: object) -> int:
        """What a node-centric policy adds to the score of every vertex below node ``v``."""
        base = v.id + 1 + _NODE_FACTOR_ADD  # type: ignore[attr-defined]
        tie = abs(v.uniq_id % _NODE_FACTOR_MUL - 1)  # type: ignore[attr-defined]
        return base * _NODE_FACTOR_MUL + tie

    def finish_vtx(self, v: object, ss: str, resources: list[ResourceReq], dfu: Scoring) -> bool:
        """Choose children of a matched vertex and set its overall score."""
        score = MATCH_MET
        desc = self.child_descending()
        for r in resources:
            if r.type != v.type:  # type: ignore[attr-defined]
                continue
            for c in r.with_:
                count = calc_count(c, dfu.qualified_count(ss, c.type))
                if count == 0:
                    score = MATCH_UNMET
                    break
                dfu.choose_accum_best_k(ss, c.type, count, desc)
        if self.node_centric and v.type == "node":  # type: ignore[attr-defined]
            self._level_scores -= self._node_factor
        if score != MATCH_MET:
            dfu.overall_score = score
            return False
        dfu.overall_score = score + self.vertex_score(v, dfu)
        return True

    def vertex_score(self, v: object, dfu: Scoring) -> int:
        if self.kind == "variation":
            raw = v.properties.get("perf_class")  # type: ignore[attr-defined]
            try:
                pc = int(raw.strip()) if raw is not None else 9999
            except ValueError:
                pc = 9999
            return pc if 0 <= pc <= 9999 else 9999
        if self.kind == "locality":
            return (1 << 20) - v.size  # type: ignore[attr-defined]
        return self._level_scores + v.id + 1  # type: ignore[attr-defined]

    def child_descending(self) -> bool:
        return False if self.kind == "variation" else self.descending

    def finish_slot(self, ss: str, dfu: Scoring) -> None:
        desc = True if self.kind == "variation" else self.descending
        for t in dfu.types(ss):
            dfu.choose_accum_all(ss, t, desc)

    def finish_graph(self, ss: str, resources: list[ResourceReq], dfu: Scoring) -> bool:
        score = MATCH_MET
        for r in resources:
            count = calc_count(r, dfu.qualified_count(ss, r.type))
            if count == 0:
                score = MATCH_UNMET
                break
            dfu.choose_accum_best_k(ss, r.type, count, self.child_descending())
        dfu.overall_score = score
        self._level_scores = 0
        return score == MATCH_MET


def _parse_custom(spec: str) -> dict[str, bool | str]:
    out: dict[str, bool | str] = {}
    for opt in spec.split():
        key, _, val = opt.partition("=")
        if key == "policy":
            if val not in ("high", "low"):
                raise PolicyError("policy key within custom policy accepts only low or high")
            out["policy"] = val
        elif key in ("node_centric", "stop_on_1_matches", "node_exclusive"):
            if val not in ("true", "false"):
                raise PolicyError(f"Policy option {key} requires true or false, got {val}")
            out[key] = val == "true"
        else:
            raise PolicyError(f"invalid policy option: {key}")
    return out


def make_policy(name: str) -> Policy:
    """Build a policy by name (see :data:`POLICIES`) or custom option string.

    Raises
    ------
    PolicyError
        For an unknown name, listing the known ones.
    """
    if name == "variation":
        return Policy(name, descending=False, kind="variation")
    if name == "locality":
        return Policy(name, descending=True, kind="locality")
    try:
        opts = _parse_custom(_NAMED.get(name, name))
    except PolicyError as exc:
        raise PolicyError(f"unknown match policy '{name}' ({exc}); known: {', '.join(POLICIES)}") from None
    if "policy" not in opts:
        raise PolicyError(f"unknown match policy '{name}'; known: {', '.join(POLICIES)}")
    p = Policy(name, descending=opts["policy"] == "high",
               node_centric=bool(opts.get("node_centric")),
               stop_on_k=1 if opts.get("stop_on_1_matches") else 0)
    if opts.get("node_exclusive"):
        p.exclusive_types.add("node")
    return p
