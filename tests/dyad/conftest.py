"""A two-rank instance (one core per rank) with the dyad module loaded on both ranks."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def dyad_instance():
    from fluxnb import Flux, Instance
    with Instance(test_size=2, cores_per_node=1) as inst:
        with Flux(inst.uri) as h:
            for rank in range(2):
                h.rpc("module.load", {"name": "dyad", "args": ["--mode", "FLUX_RPC"]}, nodeid=rank).get()
        yield inst


@pytest.fixture
def namespace(dyad_instance, request):
    """A fresh DYAD namespace, removed afterwards (as the tutorial does)."""
    from fluxnb import Flux, kvs
    name = "dyad-" + request.node.name.replace("[", "-").replace("]", "")[:40]
    with Flux(dyad_instance.uri) as h:
        kvs.namespace_create(h, name)
        yield name
        kvs.namespace_remove(h, name)


def dyad_ctx(inst, rank: int, namespace: str, **kw):
    from fluxnb.dyad import Dyad
    d = Dyad()
    d.init(kvs_namespace=namespace, uri=inst.rank_uri(rank), **kw)
    return d
