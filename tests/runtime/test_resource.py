"""The resource service: drained nodes outlive a restart (flux-resource(1))."""

from __future__ import annotations

import pytest

from fluxnb import Flux, Instance
from fluxnb.runtime.message import FluxError
from tests.conftest import wait_for


def _sched_down(h) -> str:
    st = h.rpc("sched.resource-status", {}, nodeid=0).get()
    return st.get("down") or ""


def test_drained_ranks_stay_drained_across_a_restart(tmp_path):
    statedir = str(tmp_path / "state")
    with Instance(test_size=3, statedir=statedir) as inst, Flux(inst.uri) as h:
        h.rpc("resource.drain", {"targets": "1-2", "reason": "bad dimm"}, nodeid=0).get()
        h.rpc("resource.drain", {"targets": "2", "reason": "replaced", "mode": "overwrite"},
              nodeid=0).get()
        h.rpc("resource.undrain", {"targets": "1"}, nodeid=0).get()
        before = h.rpc("resource.status", {}, nodeid=0).get()["drain"]
    assert list(before) == ["2"] and before["2"]["reason"] == "replaced"
    with Instance(test_size=3, statedir=statedir) as inst, Flux(inst.uri) as h:
        after = h.rpc("resource.status", {}, nodeid=0).get()["drain"]
        assert after == before, "same ranks, reason and drain time as before the restart"
        wait_for(lambda: _sched_down(h) == "2", what="the scheduler to see rank 2 down")
        with pytest.raises(FluxError, match="2 already drained"):
            h.rpc("resource.drain", {"targets": "2"}, nodeid=0).get()


def test_without_a_statedir_a_new_instance_starts_undrained():
    with Instance(test_size=2) as inst, Flux(inst.uri) as h:
        h.rpc("resource.drain", {"targets": "1"}, nodeid=0).get()
    with Instance(test_size=2) as inst, Flux(inst.uri) as h:
        assert h.rpc("resource.status", {}, nodeid=0).get()["drain"] == {}


def test_bad_drain_mode_is_refused_by_name():
    with Instance(test_size=2) as inst, Flux(inst.uri) as h:
        with pytest.raises(FluxError, match="unknown mode 'sideways'"):
            h.rpc("resource.drain", {"targets": "1", "mode": "sideways"}, nodeid=0).get()
        assert h.rpc("resource.status", {}, nodeid=0).get()["drain"] == {}
