import pytest

from fluxnb.runtime.topology import Topology


def path_from_root(t: Topology, target: int) -> list[int]:
    """Walk down from rank 0 to target the way a broker routes a request."""
    path, node = [0], 0
    while node != target:
        node = t.child_toward(node, target)
        assert node is not None
        path.append(node)
    return path


@pytest.mark.parametrize("fanout", [1, 2, 3, 8])
@pytest.mark.parametrize("size", [1, 2, 7, 33])
def test_every_rank_is_reached_through_its_ancestors(size, fanout):
    t = Topology(size, fanout, "/tmp/x")
    for r in range(size):
        path = path_from_root(t, r)
        # each step goes to a child of the previous rank
        for a, b in zip(path, path[1:]):
            assert t.parent(b) == a and b in t.children(a)
        assert len(path) - 1 == t.depth(r)


def test_kary_layout_matches_flux_tbon_fanout():
    t = Topology(10, 3, "/tmp/x")
    assert t.children(0) == [1, 2, 3]
    assert t.children(1) == [4, 5, 6]
    assert t.children(2) == [7, 8, 9]
    assert t.children(3) == []  # rank 10 would be its first child; size is 10
    assert t.parent(9) == 2


def test_no_child_toward_a_rank_outside_the_subtree():
    t = Topology(8, 2, "/tmp/x")
    assert t.child_toward(1, 2) is None   # 2 is a sibling, not below 1
    assert t.child_toward(3, 0) is None


@pytest.mark.parametrize("kw,msg", [({"size": 0}, "size"), ({"fanout": 0}, "fanout"),
                                    ({"transport": "udp"}, "transport")])
def test_bad_topology_is_refused(kw, msg):
    args = {"size": 4, "fanout": 2, "rundir": "/tmp/x"} | kw
    with pytest.raises(ValueError, match=msg):
        Topology(**args)
