"""What the real server never does, but a subscription must survive: a replay that
overlaps what was seen, a gap, a reset with a reload hook, a close 1000, a refusal.
A tiny in-process hub speaks the protocol with those faults on purpose."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.server import serve

from switchboard import AsyncClient, Backoff, TooManySubscriptions

HELLO = {"v": 1, "type": "hello", "client_id": "c", "server_ts": 0, "heartbeat_ms": 10000,
         "limits": {"max_subscriptions": 32, "max_message_bytes": 65536, "rate_per_min": 100}}


class FakeHub:
    def __init__(self):
        self.events = []  # data of seq 1, 2, ...
        self.epoch = "e1"
        self.conns = []
        self.subscribes = []
        self.overlap = 0  # replay this many events before `since` too
        self.skip = set()  # seqs left out of a replay (a gap)
        self.refuse = None

    def frame(self, topic, seq):
        return json.dumps({"v": 1, "type": "event", "topic": topic, "seq": seq, "ts": 0, "event": "e", "data": self.events[seq - 1]})

    async def handler(self, ws):
        self.conns.append(ws)
        await ws.send(json.dumps(HELLO))
        msg = json.loads(await ws.recv())
        self.subscribes.append(msg)
        if self.refuse:
            await ws.send(json.dumps({"v": 1, "type": "error", "code": self.refuse, "message": "no", "retryable": False,
                                      "id": msg["id"], "original_message": msg}))
            await ws.wait_closed()
            return
        since = msg.get("since")
        recovered = since is None or msg.get("epoch", self.epoch) == self.epoch
        await ws.send(json.dumps({"v": 1, "type": "subscribed", "topic": msg["topic"], "seq": len(self.events),
                                  "epoch": self.epoch, "recovered": recovered, "id": msg["id"]}))
        if since is not None and recovered:
            for seq in range(max(1, since + 1 - self.overlap), len(self.events) + 1):
                if seq not in self.skip:
                    await ws.send(self.frame(msg["topic"], seq))
        await ws.wait_closed()

    async def push(self, topic, data):
        self.events.append(data)
        await self.conns[-1].send(self.frame(topic, len(self.events)))


@pytest.fixture
async def hub():
    h = FakeHub()
    async with serve(h.handler, "127.0.0.1", 0) as server:
        h.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        yield h


async def take(sub, n):
    return [await asyncio.wait_for(sub.__anext__(), 5) for _ in range(n)]


async def test_an_overlapping_replay_is_deduplicated(hub):
    hub.events = [1, 2, 3]
    hub.overlap = 3
    async with AsyncClient(hub.url, ws_backoff=Backoff(0.05, 0.1)) as sb:
        sub = sb.subscribe("session:x", since=0)
        assert [e.data for e in await take(sub, 3)] == [1, 2, 3]
        hub.events += [4, 5]
        await hub.conns[-1].close(1011)  # dropped: resumes with since=3, gets 1..5 again
        assert [e.seq for e in await take(sub, 2)] == [4, 5]
        assert hub.subscribes[-1]["since"] == 3 and hub.subscribes[-1]["epoch"] == "e1"
        await sub.aclose()


async def test_a_gap_is_met_by_resubscribing_not_by_skipping(hub):
    hub.events = [1, 2, 3, 4]
    hub.skip = {2}
    async with AsyncClient(hub.url, ws_backoff=Backoff(0.05, 0.1)) as sb:
        sub = sb.subscribe("session:x", since=0)
        first = await take(sub, 1)
        hub.skip = set()  # the next replay is whole
        rest = await take(sub, 3)
        assert [e.seq for e in first + rest] == [1, 2, 3, 4]
        assert len(hub.subscribes) == 2 and hub.subscribes[1]["since"] == 1
        await sub.aclose()


async def test_the_reset_hook_says_where_the_snapshot_was(hub):
    hub.events = [1, 2]
    calls = []

    async def reload(marker):
        calls.append(marker)
        return 4  # a snapshot taken at seq 4

    async with AsyncClient(hub.url, ws_backoff=Backoff(0.05, 0.1)) as sb:
        sub = sb.subscribe("session:x", since=2, epoch="before", on_reset=reload)
        hub_ready = asyncio.ensure_future(take(sub, 1))
        while not hub.conns:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        for n in (3, 4, 5):  # 3 and 4 are in the snapshot already
            await hub.push("session:x", n)
        assert [e.seq for e in await hub_ready] == [5]
        assert [(m.previous_epoch, m.epoch, m.seq) for m in calls] == [("before", "e1", 2)]
        await sub.aclose()


async def test_close_1000_ends_and_a_refusal_raises(hub):
    async with AsyncClient(hub.url, ws_backoff=Backoff(0.05, 0.1)) as sb:
        sub = sb.subscribe("session:x")
        pending = asyncio.ensure_future(sub.__anext__())
        while not hub.conns:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await hub.conns[-1].close(1000)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(pending, 5)
        hub.refuse = "too_many_subscriptions"
        with pytest.raises(TooManySubscriptions) as e:
            await asyncio.wait_for(sb.subscribe("session:y").__anext__(), 5)
        assert e.value.original_message["topic"] == "session:y"
