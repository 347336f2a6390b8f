"""External runs driven end to end: the client is the executor (over the agent
WebSocket, or plain HTTP), the test is the operator over HTTP."""

from __future__ import annotations

import asyncio
import time

import pytest

from helpers import states, terminal_lines, until, wait_state
from proxy import Proxy
from switchboard import AsyncClient, Backoff, Client, Conflict, InvalidInput, Stage

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


async def test_confirm_gate_pause_chat_cancel_and_reconnects_without_a_duplicate(server, uid, fast, tmp_path):
    run_id = f"video-{uid}"
    frame = tmp_path / "frame.png"
    frame.write_bytes(PNG)
    heard = []
    proxy = Proxy(server.port).listen()  # the executor's way to the server, to cut it
    try:
        async with AsyncClient(server.url, server.tokens["operator"]) as op, AsyncClient(
            proxy.url, server.tokens["backend"], ws_backoff=fast
        ) as sb:
            async with sb.external_run(
                run_id, name="video", executor="backend", stages=[Stage("render", confirm=True), Stage("encode")]
            ) as run:
                conn = run.conn
                async with run.stage("render", on_chat=heard.append) as st:
                    assert st.key.attempt == 1
                    await st.progress(0.1, "starting")
                    for i in range(20):
                        await st.log(f"frame {i}")
                    await st.metric("psnr", 31.5, step=1)
                    await st.artifact("frame.png", frame, kind="image")
                    await st.notice("first half done")
                    await st.flush(10)

                    # the server applies these, but its `applied` answers are lost with the connection
                    proxy.blackhole_down = True
                    for i in range(20, 40):
                        await st.log(f"frame {i}")
                    await asyncio.sleep(0.3)
                    proxy.drop_all()
                    proxy.blackhole_down = False
                    await until(lambda: conn.sessions >= 2 and conn.connected.is_set(), what="reconnect 1")
                    await st.flush(10)
                    assert conn.outbox.resent == 0  # welcome said they were applied: not sent again
                    # these never reach the server before the connection is cut: sent again
                    proxy.blackhole_up = True
                    for i in range(40, 60):
                        await st.log(f"frame {i}")
                    await asyncio.sleep(0.3)
                    proxy.drop_all()
                    proxy.blackhole_up = False
                    await st.flush(20)
                    assert conn.sessions >= 3 and conn.outbox.resent > 0  # these were sent again

                    await op.pause(run_id)
                    await until(lambda: st.paused, what="the pause signal")
                    await wait_state(op, run_id, "paused")
                    await op.chat(run_id, "looks good so far")
                    await until(lambda: heard == ["looks good so far"], what="the chat line")
                    messages = st.chat_messages()  # the same line, as an async iterator
                    assert await asyncio.wait_for(messages.__anext__(), 5) == "looks good so far"
                    asyncio.get_running_loop().call_later(0.3, lambda: asyncio.ensure_future(op.resume(run_id)))
                    await st.checkpoint()  # waits while paused
                    assert not st.paused
                    for i in range(60, 70):
                        await st.log(f"frame {i}")
                    await st.progress(1.0, "rendered")
                # render succeeded: the gate waits for a person
                await wait_state(op, run_id, "waiting_confirmation")
                asyncio.get_running_loop().call_later(0.3, lambda: asyncio.ensure_future(op.confirm(run_id)))
                assert await run.wait_confirmed() == "running"
                async with run.stage("encode") as st2:
                    await st2.log("encoding")
                    await st2.flush(10)
                    await op.cancel(run_id)
                    while True:  # the work's own loop, stopping where it may
                        await st2.checkpoint()
                        await asyncio.sleep(0.02)
            ended_quietly = True  # the cancel ended the run's block without an exception
    finally:
        proxy.close()

    assert ended_quietly
    async with AsyncClient(server.url, server.tokens["operator"]) as op:
        snap = await wait_state(op, run_id, "cancelled")
        assert [(s["id"], s["status"]) for s in snap["stages"]] == [("render", "completed"), ("encode", "cancelled")]
        events = (await op.history_all(f"workflow:{run_id}")).events
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert terminal_lines(events, "render") == [f"frame {i}" for i in range(70)]
        assert terminal_lines(events, "encode") == ["encoding"]
        seen = states(events)
        for a, b in [("running", "paused"), ("paused", "running"), ("running", "waiting_confirmation"), ("waiting_confirmation", "running")]:
            assert any(seen[i:i + 2] == [a, b] for i in range(len(seen))), (a, b, seen)
        assert seen[-1] == "cancelled"
        assert [(e.data["name"], e.data["value"], e.data["step"]) for e in events if e.event == "metric_scalar"] == [("psnr", 31.5, 1)]
        arts = [e.data for e in events if e.event == "artifact"]
        assert [(a["name"], a["kind"], a["bytes"]) for a in arts] == [("frame.png", "image", len(PNG))]
        assert await op.download_artifact(run_id, "frame.png") == PNG
        logs = [e.data["message"] for e in events if e.event == "log_line"]
        assert "first half done" in logs
        progress = [(e.data["progress"], e.data["message"]) for e in events if e.event == "progress"]
        assert progress[0][1] == "starting" and progress[-1][1] == "rendered"
        assert [e.data["text"] for e in events if e.event == "chat"] == ["looks good so far"]


async def test_http_reporting_through_a_faulty_network_applies_each_line_once(server, uid):
    run_id = f"http-{uid}"
    token = server.token("reporter", "--agent", "--run", "--sub-topics", "workflow:*")
    proxy = Proxy(server.port).listen()
    try:
        async with AsyncClient(proxy.url, token, backoff=Backoff(initial=0.1, cap=0.3)) as sb:
            pipeline = {"name": "http-run", "executor": "reporter", "stages": [{"id": "render"}]}
            await sb.create_run(pipeline, run_id)
            async with sb.http_stage(run_id, "render") as st:
                for burst in range(5):
                    # answers lost after the server applied the batch, and connections cut: retried
                    proxy.faults = ["forward_then_drop", "reset", "forward_then_drop"]
                    for i in range(10):
                        await st.log(f"line {burst * 10 + i}")
                    await st.flush(20)
                with pytest.raises(Conflict) as e:  # a report past the next one expected
                    await sb.post_reports(run_id, [{**st.key.as_dict(), "seq": 999, "kind": "started"}])
                assert e.value.expected == st._outbox.last_seq(st.key) + 1
            snap = await wait_state(sb, run_id, "completed")
            assert snap["stages"][0]["agent"] == "reporter"
            events = (await sb.history_all(f"workflow:{run_id}")).events
            assert terminal_lines(events, "render") == [f"line {i}" for i in range(50)]
    finally:
        proxy.close()


def test_sync_external_run(server, uid):
    run_id = f"sync-{uid}"
    with Client(server.url, server.tokens["backend"]) as sb:
        with sb.external_run(run_id, executor="backend", stages=["only"]) as run:
            with run.stage("only") as st:
                st.progress(0.5, "half")
                st.log("hello from sync")
                with pytest.raises(InvalidInput):
                    st.log("::progress 1")  # a command in plain text is refused, named
                st.write("::warning sent as a command on purpose")
        deadline = time.monotonic() + 10
        while sb.get_run(run_id)["state"] != "completed":  # the end is applied, then acted on
            assert time.monotonic() < deadline
            time.sleep(0.05)
        events = sb.history_all(f"workflow:{run_id}").events
        assert terminal_lines(events, "only") == ["hello from sync"]
        assert [e.data["message"] for e in events if e.event == "log_line" and e.data["level"] == "warning"] == [
            "sent as a command on purpose"
        ]


async def test_a_stage_body_that_raises_fails_the_run(server, uid):
    run_id = f"fail-{uid}"
    async with AsyncClient(server.url, server.tokens["backend"]) as sb:
        with pytest.raises(RuntimeError):
            async with sb.external_run(run_id, executor="backend", stages=["a", "b"]) as run:
                async with run.stage("a") as st:
                    await st.log("about to fail")
                    raise RuntimeError("disk full")
        snap = await wait_state(sb, run_id, "failed")
        assert snap["stages"][0]["error"] == "RuntimeError: disk full"
        assert snap["stages"][1]["status"] == "skipped"


async def test_the_executor_asks_for_a_fresh_token_once(server):
    handed = []

    def token():
        handed.append(1)
        return "stale" if len(handed) == 1 else server.tokens["backend"]

    async with AsyncClient(server.url, token) as sb:
        conn = await sb.agent("backend")  # 401 at the upgrade, then the fresh token
        assert conn.connected.is_set() and len(handed) == 2
