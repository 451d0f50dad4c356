"""AsyncFlux: the asyncio form of the handle (rpc, streams, events)."""

from __future__ import annotations

import asyncio
import errno

import pytest

from fluxnb import AsyncFlux, FluxError
from fluxnb.runtime.message import FLAG_STREAMING


def test_async_rpc_stream_and_events(instance):
    async def main():
        async with AsyncFlux(instance.rank_uri(3)) as h:
            assert await h.attr_get("rank") == "3"
            sizes = await asyncio.gather(*(h.rpc("attr.get", {"name": "size"}, nodeid=r) for r in range(4)))
            assert [s["value"] for s in sizes] == ["4"] * 4
            with pytest.raises(FluxError) as exc:
                await h.rpc("nosuch.topic", {})
            assert exc.value.errno == errno.ENOSYS
            entries = [e async for e in h.rpc_stream("log.dmesg", {}, nodeid=0)]
            assert entries and all("message" in e for e in entries)
            await h.event_subscribe("async.test")
            await h.event_send("async.test.x", {"n": 1})
            ev = await asyncio.wait_for(h.event_recv(), 10)
            assert (ev.topic, ev.json) == ("async.test.x", {"n": 1})
    asyncio.run(main())
