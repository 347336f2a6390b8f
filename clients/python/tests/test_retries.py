"""A producer whose HTTP calls fail: retried where the server surely did not act,
never where it may have (then `DeliveryUnknown`), and never a duplicate."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from proxy import Proxy
from switchboard import AsyncClient, Backoff, Client, DeliveryUnknown

QUICK = Backoff(initial=0.2, cap=0.5)


@pytest.fixture
def proxy(server):
    p = Proxy(server.port)
    yield p
    p.close()


async def events_of(server, topic):
    async with AsyncClient(server.url, server.tokens["producer"]) as sb:
        return (await sb.history(topic)).events


async def test_refused_connections_are_retried_until_the_server_is_there(server, proxy, uid):
    topic = f"session:{uid}"
    async with AsyncClient(proxy.url, server.tokens["producer"], retries=30, backoff=QUICK) as sb:
        publish = asyncio.ensure_future(sb.publish(topic, "ai_start", {"n": 1}))
        await asyncio.sleep(1.2)
        assert not publish.done()  # still trying: nothing listens on the proxy's port
        proxy.listen()
        assert await asyncio.wait_for(publish, 10) == 1
    assert [e.data for e in await events_of(server, topic)] == [{"n": 1}]


async def test_503_is_retried_after_its_retry_after(server, proxy, uid):
    topic = f"session:{uid}"
    proxy.faults = ["503", "503"]
    proxy.listen()
    async with AsyncClient(proxy.url, server.tokens["producer"], backoff=QUICK) as sb:
        started = time.monotonic()
        assert await sb.publish(topic, "ai_progress", {"p": 0.5}) == 1
        assert time.monotonic() - started >= 1.9  # two Retry-After: 1
    assert proxy.accepted == 3
    assert len(await events_of(server, topic)) == 1


async def test_a_publish_that_may_have_been_applied_is_not_sent_again(server, proxy, uid):
    topic = f"session:{uid}"
    proxy.faults = ["forward_then_drop"]
    proxy.listen()
    async with AsyncClient(proxy.url, server.tokens["producer"], backoff=QUICK) as sb:
        with pytest.raises(DeliveryUnknown) as e:
            await sb.publish(topic, "ai_complete", {"ok": True})
        assert "may have been applied" in str(e.value)
        # it had reached the server: sending it again would have published it twice
        assert len(await events_of(server, topic)) == 1
        # the same fault on a read is simply retried
        proxy.faults = ["forward_then_drop", "reset"]
        page = await sb.history(topic)
        assert [ev.seq for ev in page.events] == [1]


async def test_a_reset_before_any_answer_is_not_guessed_at(server, proxy, uid):
    topic = f"session:{uid}"
    proxy.faults = ["reset"]
    proxy.listen()
    async with AsyncClient(proxy.url, server.tokens["producer"], backoff=QUICK) as sb:
        # accepted, then cut: the client cannot know whether the server saw it
        with pytest.raises(DeliveryUnknown):
            await sb.publish(topic, "e", 1)
        assert await sb.publish(topic, "e", 2) == 1  # the next goes through
    assert [e.data for e in await events_of(server, topic)] == [2]


def test_sync_producer_retries_too(server, proxy, uid):
    topic = f"session:{uid}"
    threading.Timer(1.0, proxy.listen).start()
    with Client(proxy.url, server.tokens["producer"], retries=30, backoff=QUICK) as sb:
        assert sb.publish(topic, "e", {"sync": True}) == 1
        proxy.faults = ["503"]
        assert sb.publish(topic, "e", {"sync": 2}) == 2
        assert [e.seq for e in sb.history(topic).events] == [1, 2]
