"""KVSWriter: services' KVS writes gathered into one commit per namespace."""

from __future__ import annotations

import asyncio

from fluxnb.runtime.kvs.writer import KVSWriter


class _Broker:
    """What KVSWriter uses of a broker: its loop, and an RPC that records commits."""

    def __init__(self, loop):
        self.loop = loop
        self.commits: list[tuple[str, list[str]]] = []
        self.futures: list[asyncio.Future] = []

    def rpc(self, topic, payload, nodeid=0):
        assert topic == "kvs.commit"
        self.commits.append((payload["namespace"], [op["key"] for op in payload["ops"]]))
        fut = self.loop.create_future()
        self.futures.append(fut)
        return fut


def test_after_now_sends_that_namespace_at_once_and_the_rest_keeps_gathering():
    # a job's guest namespace is its own: its last events go out at once, without
    # waiting for the window (or an idle loop) that the shared primary namespace
    # waits for to gather other jobs' ops into the same commit
    async def main():
        loop = asyncio.get_running_loop()
        b = _Broker(loop)
        w = KVSWriter(b, window=10.0)
        done = []
        w.append("eventlog", "a", namespace="primary")
        w.append("exec.eventlog", "x", namespace="job-1")
        w.append("output", "y", namespace="job-1")
        w.after("job-1", lambda: done.append("job-1"), now=True)
        assert b.commits == [("job-1", ["exec.eventlog", "output"])]  # at once, in order
        w.after("primary", lambda: done.append("primary"))
        assert len(b.commits) == 1  # not before the loop has run
        b.futures[0].set_result({})
        await asyncio.sleep(0)
        assert done == ["job-1"]
        await asyncio.sleep(0.01)  # the loop idles: the primary batch goes out
        assert b.commits[1] == ("primary", ["eventlog"])
        b.futures[1].set_result({})
        await asyncio.sleep(0)
        assert done == ["job-1", "primary"]
        # a later op of the same namespace is a new commit, answered after the first
        w.append("exec.eventlog", "z", namespace="job-1")
        w.after("job-1", lambda: done.append("again"), now=True)
        assert b.commits[2] == ("job-1", ["exec.eventlog"])
    asyncio.run(main())
