"""Pure logic, no server: validation, lines, backoff, the retry rules, the outbox."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from switchboard import Backoff, InvalidInput, InvalidTopic, MessageTooLarge, Outbox, StageKey, errors
from switchboard import api, retry, validate
from switchboard.agent import lines


@pytest.mark.parametrize("name", ["metrics", "workflow:abc-1", "a.b_c:d-e", "0", "x" * 128])
def test_good_topics(name):
    assert validate.topic(name) == name


@pytest.mark.parametrize(
    "name, says",
    [("", "empty"), ("x" * 129, "129 bytes"), ("Metrics", "'M'"), ("a b", "' '"), ("a/b", "'/'"), ("é", "'é'"), (3, "string")],
)
def test_bad_topics_are_named(name, says):
    with pytest.raises(InvalidTopic) as e:
        validate.topic(name)
    assert says in str(e.value)
    assert e.value.value == name
    assert isinstance(e.value, ValueError) and isinstance(e.value, errors.BadRequest)


def test_publish_refuses_before_sending():
    with pytest.raises(InvalidTopic, match="written only by the server"):
        api.publish("workflow:1", "x", {}, 65536)
    with pytest.raises(InvalidInput, match="control character"):
        api.publish("session:a", "bad\nname", {}, 65536)
    with pytest.raises(InvalidInput, match="not JSON-serializable"):
        api.publish("session:a", "e", {"x": math.nan}, 65536)
    with pytest.raises(MessageTooLarge, match="65536") as e:
        api.publish("session:a", "e", "x" * 70000, 65536)
    assert e.value.value > 65536
    call = api.publish("session:a", "e", {"ok": True}, 65536)
    assert call.safe_500 and not call.idempotent


def test_stage_lines():
    assert lines.progress(0.42, "half way") == "::progress 0.42 half way"
    assert lines.progress(1) == "::progress 1.0"
    assert lines.metrics({"psnr": 31.5}, step=1) == "::metric psnr=31.5 step=1"
    assert lines.artifact("frames/f1.png", "image") == "::artifact frames/f1.png image"
    assert lines.log("warning", "disk 90% full") == "::warning disk 90% full"
    assert lines.plain("a\nb\n") == ["a", "b"]
    for bad in (lambda: lines.progress(1.5), lambda: lines.progress(math.inf), lambda: lines.metrics({"a b": 1}),
                lambda: lines.metrics({"step": 1}), lambda: lines.metrics({"x": 1}, step=-1),
                lambda: lines.artifact("../x"), lambda: lines.artifact(".hidden"), lambda: lines.artifact("a b"),
                lambda: lines.artifact("x", "video"), lambda: lines.plain("ok\n::progress 1"),
                lambda: lines.log("notice", "two\nlines")):
        with pytest.raises(InvalidInput):
            bad()


def test_full_jitter_backoff():
    b = Backoff(initial=1.0, cap=30.0, rand=lambda: 1.0)
    assert [b.delay(i) for i in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert Backoff(rand=lambda: 0.0).delay(3) == 0
    assert all(0 <= Backoff().delay(i) <= 30 for i in range(50))


def test_what_is_retried():
    req = httpx.Request("POST", "http://x/api/v1/publish")
    # never sent: retried, publish or not
    assert retry.on_exception(httpx.ConnectError("refused", request=req), False, "p").retry
    # sent, no answer: only an idempotent call is retried; a publish says it may have happened
    read = httpx.ReadTimeout("slow", request=req)
    assert retry.on_exception(read, True, "r").retry
    v = retry.on_exception(read, False, "p")
    assert not v.retry and isinstance(v.error, errors.DeliveryUnknown)
    ours = {"error": {"code": "internal", "message": "log refused"}}
    assert retry.on_status(500, {}, ours, "", False, True).retry  # a publish the hub did not take
    assert not retry.on_status(500, {}, ours, "", False, False).retry  # a control: unknown
    assert isinstance(retry.on_status(502, {}, None, "bad gateway", False, True).error, errors.DeliveryUnknown)
    v = retry.on_status(429, {"retry-after": "3"}, {"error": {"code": "rate_limited", "message": ""}}, "", False, False)
    assert v.retry and v.delay == 3.0 and isinstance(v.error, errors.RateLimited)
    v = retry.on_status(503, {"retry-after": "2"}, {"error": {"code": "agent_offline", "message": ""}}, "", False, False)
    assert v.retry and v.delay == 2.0 and isinstance(v.error, errors.AgentOffline)
    assert not retry.on_status(409, {}, {"error": {"code": "conflict", "message": ""}}, "", True, False).retry
    conflict = retry.on_status(409, {}, {"error": {"code": "conflict", "message": "gap", "expected": 7}}, "", True, False).error
    assert isinstance(conflict, errors.Conflict) and conflict.expected == 7


def test_ws_errors_become_typed():
    e = errors.from_ws_error({"type": "error", "code": "forbidden", "message": "no", "retryable": False,
                              "original_message": {"type": "subscribe", "topic": "x"}})
    assert isinstance(e, errors.Forbidden) and e.code == "forbidden" and e.original_message["topic"] == "x"
    assert isinstance(errors.from_ws_error({"code": "agent_offline", "message": ""}), errors.AgentOffline)


K = StageKey("r", "s", 1)


def out(*text):
    return {"kind": "output", "stream": "stdout", "lines": list(text)}


async def test_outbox_keeps_until_applied_and_resends_from_where_asked():
    o = Outbox()
    o.push(K, {"kind": "started"})
    for i in range(4):
        o.push(K, out(f"line {i}"))  # joined into one report while unsent
    first = o.take_batch()
    assert [r["seq"] for r in first] == [1, 2] and first[1]["lines"] == [f"line {i}" for i in range(4)]
    o.push(K, out("late"))  # report 2 was sent: not changed any more
    assert [r["seq"] for r in o.take_batch()] == [3]
    assert o.take_batch() == []
    o.applied(K, 1)
    o.reconnected()
    o.resume_from(K, 3)  # the server had applied 2 as well
    assert [r["seq"] for r in o.take_batch()] == [3]
    o.applied(K, 3)
    assert not o.pending()


async def test_outbox_resends_acknowledged_reports_a_crashed_server_lost():
    o = Outbox()
    for i in range(5):
        o.push(K, {"kind": "paused", "paused": i % 2 == 0})
    o.take_batch()
    o.applied(K, 5)
    o.reconnected()
    o.resume_from(K, 4)  # killed before storing 4 and 5
    assert [r["seq"] for r in o.take_batch()] == [4, 5]
    o2 = Outbox(retain_reports=1)
    for i in range(5):
        o2.push(K, {"kind": "paused", "paused": True})
    o2.take_batch()
    o2.applied(K, 4)
    o2.resume_from(K, 2)  # 2 and 3 no longer retained: the rest goes on from 2
    assert [r["seq"] for r in o2.take_batch()] == [2, 3] and o2.lost == 2


async def test_outbox_waiters_and_refusals():
    o = Outbox()
    seq = o.push(K, out("x"))
    waiter = asyncio.ensure_future(o.wait_applied(K, seq))
    await asyncio.sleep(0)
    assert not waiter.done()
    o.applied(K, seq)
    await waiter
    seq = o.push(K, out("y"))
    waiter = asyncio.ensure_future(o.wait_applied(K, seq))
    await asyncio.sleep(0)
    o.forget(K, errors.StageRefused("finished"))
    with pytest.raises(errors.StageRefused):
        await waiter
    with pytest.raises(errors.StageRefused):
        o.push(K, out("z"))


async def test_outbox_backpressure():
    o = Outbox(limit_bytes=200)
    o.push(K, out("x" * 300))
    blocked = asyncio.ensure_future(o.wait_room())
    await asyncio.sleep(0.01)
    assert not blocked.done()
    o.take_batch()
    o.applied(K, 1)
    await asyncio.wait_for(blocked, 1)
