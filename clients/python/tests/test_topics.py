"""Publish and receive, over HTTP and the WebSocket, with the typed errors."""

from __future__ import annotations

import asyncio

import pytest

from switchboard import (
    AsyncClient,
    Client,
    ConnectionRefusedByPolicy,
    Forbidden,
    InvalidTopic,
    MessageTooLarge,
    NotFound,
    Reset,
    Unauthorized,
)


async def next_events(sub, n, timeout=10.0):
    out = []
    async def take():
        async for ev in sub:
            out.append(ev)
            if len(out) == n:
                return
    await asyncio.wait_for(take(), timeout)
    return out


async def test_publish_and_receive(server, uid, fast):
    topic = f"session:{uid}"
    async with AsyncClient(server.url, server.tokens["producer"], ws_backoff=fast) as sb:
        sub = sb.subscribe(topic)
        first = asyncio.ensure_future(next_events(sub, 3))
        while sub.connections == 0:  # subscribed before publishing: live events
            await asyncio.sleep(0.02)
        seqs = [await sb.publish(topic, "ai_progress", {"progress": p}) for p in (0.1, 0.5, 1.0)]
        events = await first
        assert seqs == [1, 2, 3]
        assert [(e.seq, e.event, e.data["progress"]) for e in events] == [(1, "ai_progress", 0.1), (2, "ai_progress", 0.5), (3, "ai_progress", 1.0)]
        assert events[0].epoch and sub.position == (3, events[0].epoch)
        await sub.aclose()
        # a later reader resumes from a position: gets only what came after it
        await sb.publish(topic, "ai_complete", {"ok": True})
        async with sb.subscribe(topic, since=2, epoch=events[0].epoch) as again:
            got = await next_events(again, 2)
        assert [e.seq for e in got] == [3, 4]
        page = await sb.history(topic, since=1)
        assert [e.seq for e in page.events] == [2, 3, 4] and page.seq == 4 and page.epoch == events[0].epoch


async def test_an_idle_subscription_answers_the_heartbeat(server, uid, fast):
    topic = f"session:{uid}"
    async with AsyncClient(server.url, server.tokens["producer"], ws_backoff=fast) as sb:
        sub = sb.subscribe(topic)
        waiting = asyncio.ensure_future(sub.__anext__())
        await asyncio.sleep(2.0)  # ~7 Pings of the server's (every 300 ms), answered by websockets
        await sb.publish(topic, "late", {})
        ev = await asyncio.wait_for(waiting, 5)
        assert ev.event == "late" and sub.connections == 1
        await sub.aclose()


async def test_stale_position_yields_a_reset_marker(server, uid, fast):
    topic = f"session:{uid}"
    async with AsyncClient(server.url, server.tokens["producer"], ws_backoff=fast) as sb:
        await sb.publish(topic, "e", 1)
        sub = sb.subscribe(topic, since=1, epoch="not-this-epoch")
        first = await asyncio.wait_for(sub.__anext__(), 10)
        assert isinstance(first, Reset) and first.previous_epoch == "not-this-epoch" and first.seq == 1
        await sb.publish(topic, "e", 2)
        ev = await asyncio.wait_for(sub.__anext__(), 10)
        assert (ev.seq, ev.data, ev.epoch) == (2, 2, first.epoch)
        await sub.aclose()


def test_sync_client_publishes_and_iterates(server, uid, fast):
    topic = f"session:{uid}"
    with Client(server.url, server.tokens["producer"], ws_backoff=fast) as sb:
        assert sb.publish(topic, "a", {"n": 1}) == 1
        with sb.subscribe(topic, since=0) as sub:
            ev = next(iter(sub))
            assert (ev.seq, ev.event, ev.data) == (1, "a", {"n": 1})
            sb.publish(topic, "b", {"n": 2})
            assert next(sub).data == {"n": 2}
        assert [e.seq for e in sb.history(topic).events] == [1, 2]


async def test_bad_input_is_refused_before_sending(server):
    sent = []

    async with AsyncClient(server.url, server.tokens["producer"]) as sb:
        async def record(request):
            sent.append(request)

        sb.http.client.event_hooks["request"].append(record)
        with pytest.raises(InvalidTopic, match="'S'") as e:
            await sb.publish("Session:x", "e", {})
        assert e.value.value == "Session:x"
        with pytest.raises(InvalidTopic, match="only by the server"):
            await sb.publish("workflow:abc", "e", {})
        with pytest.raises(MessageTooLarge, match="65536"):
            await sb.publish("session:x", "e", {"blob": "x" * 70_000})
        with pytest.raises(InvalidTopic):
            sb.subscribe("bad topic")
        with pytest.raises(InvalidTopic):
            await sb.history("a/b")
    assert sent == []  # nothing reached the wire


async def test_server_errors_are_typed(server, uid, fast):
    async with AsyncClient(server.url, server.tokens["producer"], ws_backoff=fast) as sb:
        # not in the token's pub_topics: the server says forbidden
        with pytest.raises(Forbidden) as e:
            await sb.publish(f"user:{uid}", "e", {})
        assert e.value.code == "forbidden" and e.value.status == 403 and "pub_topics" in e.value.message
        with pytest.raises(NotFound) as e:
            await sb.get_run("no-such-run")
        assert e.value.code == "not_found" and "no-such-run" in e.value.message
    async with AsyncClient(server.url, server.tokens["reader"], ws_backoff=fast) as sb:
        # a WebSocket `error`: the subscribe the server refused, echoed back
        with pytest.raises(Forbidden) as e:
            await asyncio.wait_for(sb.subscribe("coordinator").__anext__(), 10)
        assert e.value.original_message["topic"] == "coordinator"
    async with AsyncClient(server.url, "not-a-token", ws_backoff=fast) as sb:
        with pytest.raises(Unauthorized) as e:
            await sb.publish(f"session:{uid}", "e", {})
        assert e.value.status == 401
        with pytest.raises(ConnectionRefusedByPolicy):
            await asyncio.wait_for(sb.subscribe(f"session:{uid}").__anext__(), 10)


async def test_token_callback_is_asked_again_once_on_401_and_1008(server, uid, fast):
    handed = []

    def tokens():
        # the first token is bad, the next ones good
        handed.append(len(handed))
        return "expired" if len(handed) == 1 else server.tokens["producer"]

    async with AsyncClient(server.url, tokens, ws_backoff=fast) as sb:
        assert await sb.publish(f"session:{uid}", "e", 1) == 1
        assert len(handed) == 2
    handed.clear()
    async with AsyncClient(server.url, tokens, ws_backoff=fast) as sb:
        sub = sb.subscribe(f"session:{uid}", since=0)
        ev = await asyncio.wait_for(sub.__anext__(), 10)
        assert ev.seq == 1 and len(handed) == 2
        await sub.aclose()
    always_bad = []
    async with AsyncClient(server.url, lambda: always_bad.append(1) or "bad", ws_backoff=fast) as sb:
        with pytest.raises(Unauthorized):
            await sb.publish(f"session:{uid}", "e", 1)
        assert len(always_bad) == 2  # asked once more, then the refusal is raised
