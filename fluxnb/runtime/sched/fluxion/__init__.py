"""Fluxion-style graph scheduler core.

The resource graph (:mod:`.graph`, built by :mod:`.grug` or :mod:`.jgf`),
per-vertex planners (:mod:`.planner`), pruning filters (:mod:`.prune`),
match policies (:mod:`.policies`), the depth-first matcher (:mod:`.matcher`)
and match writers (:mod:`.writers`), as in flux-sched's ``resource/``.
"""

from __future__ import annotations

from .graph import CONTAINMENT, GraphError, ResourceGraph, Vertex
from .grug import GrugError, parse_grug, read_grug
from .jgf import JGFError, dumps_jgf, parse_jgf, read_jgf
from .matcher import MatchError, Traverser
from .planner import MultiPlanner, Planner, PlannerError
from .policies import POLICIES, Policy, PolicyError, make_policy
from .request import Request, RequestError, parse_request
from .writers import WRITER_FORMATS, make_writer

__all__ = ["CONTAINMENT", "GraphError", "ResourceGraph", "Vertex", "GrugError", "parse_grug",
           "read_grug", "JGFError", "dumps_jgf", "parse_jgf", "read_jgf", "MatchError", "Traverser",
           "MultiPlanner", "Planner", "PlannerError", "POLICIES", "Policy", "PolicyError",
           "make_policy", "Request", "RequestError", "parse_request", "WRITER_FORMATS", "make_writer"]
