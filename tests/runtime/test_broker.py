"""Brokers, routing, services and events: the same behaviour with threads or processes."""

from __future__ import annotations

import errno
import json

import pytest
import zmq

from fluxnb import Flux, FluxError
from fluxnb.runtime.message import FLAG_STREAMING, Message, NODEID_UPSTREAM


def test_every_rank_answers_for_itself(any_instance):
    with Flux(any_instance.uri) as h:
        for rank in range(4):
            assert h.rpc("attr.get", {"name": "rank"}, nodeid=rank).get()["value"] == str(rank)
        assert h.attr_get("size") == "4"


def test_request_crosses_subtrees(any_instance):
    # fan-out 2: rank 3 is below rank 1, rank 2 below rank 0; 3 -> 2 goes up then down
    with Flux(any_instance.rank_uri(3)) as h:
        assert h.attr_get("rank") == "3"
        assert h.rpc("attr.get", {"name": "rank"}, nodeid=2).get()["value"] == "2"
        ping = h.rpc("broker.ping", {"seq": 1}, nodeid=2).get()
        assert ping["seq"] == 1


def test_any_nodeid_reaches_rank0_service_from_a_leaf(any_instance):
    with Flux(any_instance.rank_uri(3)) as h:
        h.rpc("kvs.commit", {"ops": [{"key": "leaf.k", "flags": 0,
                                      "dirent": {"ver": 1, "type": "val", "data": "MQ=="}}]}).get()
    with Flux(any_instance.uri) as h:
        assert h.rpc("kvs.lookup", {"key": "leaf.k"}).get()["val"]["data"] == "MQ=="


def test_large_payloads_cross_two_hops_intact(any_instance):
    # over 64 KiB a payload travels in a frame of its own, received uncopied: a
    # 300 KB JSON value committed from a leaf (3 -> 1 -> 0) and read back there
    # must decode as JSON on the way, and raw bytes must come back byte for byte
    import base64
    import os
    blob = os.urandom(300_000)
    data = base64.b64encode(blob).decode()
    with Flux(any_instance.rank_uri(3)) as h:
        h.rpc("kvs.commit", {"ops": [{"key": "big.v", "flags": 0,
                                      "dirent": {"ver": 1, "type": "val", "data": data}}]}).get()
        got = h.rpc("kvs.lookup", {"key": "big.v"}, nodeid=0).get()
    assert base64.b64decode(got["val"]["data"]) == blob


def test_unknown_service_is_enosys_naming_the_topic(any_instance):
    with Flux(any_instance.uri) as h:
        with pytest.raises(FluxError) as exc:
            h.rpc("nosuch.method", {}).get()
        assert exc.value.errno == errno.ENOSYS and "nosuch.method" in str(exc.value)
        with pytest.raises(FluxError) as exc:
            h.rpc("kvs.nosuchmethod", {}).get()
        assert exc.value.errno == errno.ENOSYS and "kvs.nosuchmethod" in str(exc.value)
        # a service that lives only on rank 0, asked for on rank 2
        with pytest.raises(FluxError) as exc:
            h.rpc("kvs.lookup", {"key": "a"}, nodeid=2).get()
        assert exc.value.errno == errno.ENOSYS


def test_out_of_range_rank_is_ehostunreach(any_instance):
    with Flux(any_instance.uri) as h:
        with pytest.raises(FluxError) as exc:
            h.rpc("attr.get", {"name": "rank"}, nodeid=17).get()
        assert exc.value.errno == errno.EHOSTUNREACH and "17" in str(exc.value)
        with pytest.raises(FluxError) as exc:
            h.rpc("attr.get", {"name": "rank"}, nodeid=NODEID_UPSTREAM).get()
        assert exc.value.errno == errno.EHOSTUNREACH


def test_upstream_from_a_leaf_goes_to_its_parent(any_instance):
    with Flux(any_instance.rank_uri(3)) as h:
        assert h.rpc("attr.get", {"name": "rank"}, nodeid=NODEID_UPSTREAM).get()["value"] == "1"


def test_events_reach_subscribers_on_every_rank_in_order(any_instance):
    subs = [Flux(any_instance.rank_uri(r)) for r in range(4)]
    try:
        for s in subs:
            s.event_subscribe("test.fanout")
        with Flux(any_instance.rank_uri(2)) as pub:
            for i in range(20):
                pub.event_send("test.fanout.x", {"i": i})
            pub.event_send("other.topic", {})
        for s in subs:
            got = [s.event_recv(timeout=10) for _ in range(20)]
            assert [e.json["i"] for e in got] == list(range(20))
            assert all(e.topic == "test.fanout.x" for e in got)
            seqs = [e.seq for e in got]
            assert seqs == sorted(seqs) and len(set(seqs)) == 20
            with pytest.raises(TimeoutError):  # other.topic was not subscribed
                s.event_recv(timeout=0.2)
    finally:
        for s in subs:
            s.close()


def test_streaming_rpc_and_rexec_on_a_rank(any_instance):
    with Flux(any_instance.uri) as h:
        rpc = h.rpc("rexec.exec", {"cmd": ["sh", "-c", "echo $FLUX_URI; exit 3"]}, nodeid=3,
                    flags=FLAG_STREAMING)
        out, status = b"", None
        import base64
        for resp in rpc:
            if "data" in resp:
                out += base64.b64decode(resp["data"])
            if "status" in resp:
                status = resp["status"]
        assert out.decode().strip() == any_instance.rank_uri(3)
        assert status == 3


def test_malformed_client_message_fails_alone(any_instance):
    from fluxnb.runtime.connector import UnixConnection
    sock = UnixConnection(any_instance.uri[len("local://"):], any_instance.uri)
    try:
        for bad in (b"garbage\x00\x01", b"no separator", b"[1]\0{}"):
            sock.send(bad)
            assert sock.poll(5000)
            reply = Message.decode(sock.recv())
            assert reply.errnum == errno.EPROTO and "malformed" in reply.errstr
        # a well-formed request with a bad payload gets EPROTO naming the topic
        sock.send(Message.request("attr.get", b"{not json", matchtag=5).encode())
        assert sock.poll(5000)
        reply = Message.decode(sock.recv())
        assert reply.matchtag == 5 and reply.errnum == errno.EPROTO and "attr.get" in reply.errstr
    finally:
        sock.close()
    with Flux(any_instance.uri) as h:  # still serving
        assert h.attr_get("size") == "4"


def test_missing_payload_field_is_eproto(any_instance):
    with Flux(any_instance.uri) as h:
        with pytest.raises(FluxError) as exc:
            h.rpc("attr.get", {}).get()
        assert exc.value.errno == errno.EPROTO and "name" in str(exc.value)


def test_attributes_get_set_list(any_instance):
    with Flux(any_instance.rank_uri(1)) as h:
        names = h.rpc("attr.list", {}).get()["names"]
        for required in ("rank", "size", "local-uri", "instance-level", "hostlist", "broker.pid",
                         "log-level", "rundir"):
            assert required in names
        assert h.attr_get("local-uri") == any_instance.rank_uri(1)
        assert h.attr_get("hostlist") == "node[0-3]"
        h.attr_set("user.color", "blue")
        assert h.attr_get("user.color") == "blue"
        with pytest.raises(FluxError) as exc:
            h.attr_set("size", "9")
        assert exc.value.errno == errno.EPERM
        with pytest.raises(FluxError) as exc:
            h.attr_set("log-level", "loud")
        assert exc.value.errno == errno.EINVAL and "log-level" in str(exc.value)
        with pytest.raises(FluxError) as exc:
            h.attr_get("no-such-attr")
        assert exc.value.errno == errno.ENOENT


def test_module_list_load_unload(any_instance):
    with Flux(any_instance.uri) as h:
        names = {m["name"] for m in h.rpc("module.list", {}).get()["mods"]}
        assert {"kvs", "rexec", "attr", "log"} <= names
        h.rpc("module.remove", {"name": "rexec"}, nodeid=3).get()
        with pytest.raises(FluxError) as exc:
            h.rpc("rexec.exec", {"cmd": ["true"]}, nodeid=3, flags=FLAG_STREAMING).get()
        assert exc.value.errno == errno.ENOSYS
        h.rpc("module.load", {"name": "rexec"}, nodeid=3).get()
        with pytest.raises(FluxError) as exc:
            h.rpc("module.load", {"name": "rexec"}, nodeid=3).get()
        assert exc.value.errno == errno.EEXIST
        with pytest.raises(FluxError) as exc:
            h.rpc("module.load", {"name": "no-such-module"}).get()
        assert exc.value.errno == errno.ENOENT and "no-such-module" in str(exc.value)


def test_dmesg_collects_every_rank_and_clears(any_instance):
    with Flux(any_instance.uri) as h:
        entries = list(h.rpc("log.dmesg", {}, nodeid=0, flags=FLAG_STREAMING))
        ranks = {e["rank"] for e in entries}
        assert ranks == {0, 1, 2, 3}
        h.rpc("log.clear", {}, nodeid=0).get()
        assert list(h.rpc("log.dmesg", {}, nodeid=0, flags=FLAG_STREAMING)) == []


def test_ping_route_names_the_ranks(any_instance):
    with Flux(any_instance.uri) as h:
        assert h.rpc("broker.ping", {"seq": 0}, nodeid=3).get()["route"] == "0!1!3"


def test_brokers_of_one_loop_are_linked_and_a_closed_one_is_unreachable():
    # In one process the brokers hand messages to each other directly (no zmq);
    # a broker of the loop that has closed must then fail requests routed to it
    # with EHOSTUNREACH, as a zmq send to a departed peer does, not swallow them.
    import concurrent.futures

    from fluxnb import Instance
    with Instance(test_size=4) as inst:
        brokers = inst._set.brokers
        assert brokers[3]._direct_parent is brokers[1]
        assert brokers[0]._direct_children == {1: brokers[1], 2: brokers[2]}
        with Flux(inst.uri) as h:
            assert h.rpc("broker.ping", {"seq": 5}, nodeid=3).get()["route"] == "0!1!3"
        done: concurrent.futures.Future = concurrent.futures.Future()

        def close_then_ask():
            brokers[3].close()
            fut = brokers[0].rpc("attr.get", {"name": "rank"}, nodeid=3)
            fut.add_done_callback(lambda f: done.set_result(f.exception()))

        brokers[0].loop.call_soon_threadsafe(close_then_ask)
        exc = done.result(timeout=10)
        assert isinstance(exc, FluxError) and exc.errno == errno.EHOSTUNREACH
