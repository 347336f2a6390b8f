"""Server restarts in the middle of a subscription (and of a stage).

- SIGTERM (clean): a run's topic (`workflow:*`, durable) comes back with its epoch
  and seq, so the subscription resumes with nothing lost and nothing repeated, and
  the executor resends only what the server had not applied.
- A `session:*` topic lives in memory: after any restart its history is gone and it
  has a new epoch, so the subscription yields a `Reset` and goes on live.
- SIGKILL (a crash): run topics come back with a new epoch (their tail may not have
  reached the disk), so the subscription calls its `on_reset` hook, which reloads
  the run and says from which seq to go on.
- A server away for longer than the HTTP retries while an external run waits at its
  gate: the executor still takes the next stage once it is confirmed.
"""

from __future__ import annotations

import asyncio
import signal

from helpers import states, terminal_lines, until, wait_state
from switchboard import AsyncClient, Reset, Stage


async def test_sigterm_mid_subscription_on_a_run_topic_loses_and_repeats_nothing(own_server, uid, fast):
    srv = own_server
    run_id = f"restart-{uid}"
    topic = f"workflow:{run_id}"
    async with AsyncClient(srv.url, srv.tokens["backend"], ws_backoff=fast) as exe, AsyncClient(
        srv.url, srv.tokens["reader"], ws_backoff=fast
    ) as watcher:
        async with exe.external_run(run_id, executor="backend", stages=["work"]) as run:
            sub = watcher.subscribe(topic, since=0)
            seen = []

            async def watch():
                async for ev in sub:
                    seen.append(ev)
                    if ev.event == "workflow_status" and ev.data["state"] == "completed":
                        return

            watching = asyncio.ensure_future(watch())
            async with run.stage("work") as st:
                for i in range(30):
                    await st.log(f"line {i}")
                await st.flush(10)
                await until(lambda: any(e.event == "terminal_output" for e in seen), what="the first output")
                epoch = seen[0].epoch
                restart = asyncio.ensure_future(asyncio.to_thread(srv.restart, signal.SIGTERM))
                for i in range(30, 60):  # while it stops, is down, and starts: kept, then sent
                    await st.log(f"line {i}")
                    await asyncio.sleep(0.02)
                await restart
                for i in range(60, 70):
                    await st.log(f"line {i}")
                await st.flush(30)
            await asyncio.wait_for(watching, 30)
            await sub.aclose()
        assert srv.starts == 2 and sub.connections >= 2 and sub.resets == 0
        assert [e.seq for e in seen] == list(range(1, len(seen) + 1))  # no gap, no duplicate
        assert {e.epoch for e in seen} == {epoch}
        history = (await watcher.history_all(topic)).events[: len(seen)]  # (a notification follows)
        assert [(e.seq, e.event, e.data) for e in history] == [(e.seq, e.event, e.data) for e in seen]
        assert terminal_lines(seen, "work") == [f"line {i}" for i in range(70)]


async def test_a_session_topic_starts_over_after_a_restart(own_server, uid, fast):
    srv = own_server
    topic = f"session:{uid}"
    async with AsyncClient(srv.url, srv.tokens["producer"], ws_backoff=fast) as sb:
        for n in range(3):
            await sb.publish(topic, "ai_progress", {"n": n})
        sub = sb.subscribe(topic, since=0)
        first = [await asyncio.wait_for(sub.__anext__(), 10) for _ in range(3)]
        await asyncio.to_thread(srv.restart, signal.SIGTERM)
        marker = await asyncio.wait_for(sub.__anext__(), 20)
        # its history lived in memory: gone, and a new epoch says so
        assert isinstance(marker, Reset)
        assert (marker.previous_seq, marker.previous_epoch, marker.seq) == (3, first[0].epoch, 0)
        assert marker.epoch != first[0].epoch
        assert await sb.publish(topic, "ai_progress", {"n": "after"}) == 1
        ev = await asyncio.wait_for(sub.__anext__(), 10)
        assert (ev.seq, ev.data, ev.epoch) == (1, {"n": "after"}, marker.epoch)
        await sub.aclose()


async def test_after_a_crash_a_run_topic_is_reloaded_through_the_hook(own_server, uid, fast):
    srv = own_server
    run_id = f"crash-{uid}"
    topic = f"workflow:{run_id}"
    resets = []
    async with AsyncClient(srv.url, srv.tokens["backend"], ws_backoff=fast) as exe, AsyncClient(
        srv.url, srv.tokens["operator"], ws_backoff=fast
    ) as op:

        async def reload(marker: Reset) -> int:
            snap = await op.get_run(run_id)  # the state now, at seq `snap["seq"]`
            resets.append((marker, snap))
            return snap["seq"]

        seen = []
        async with exe.external_run(run_id, executor="backend", stages=[Stage("a", confirm=True)]) as run:
            sub = op.subscribe(topic, since=0, on_reset=reload)

            async def watch():
                async for ev in sub:
                    seen.append(ev)
                    if ev.event == "workflow_status" and ev.data["state"] == "completed":
                        return

            watching = asyncio.ensure_future(watch())
            async with run.stage("a") as st:
                await st.log("before the crash")
        await wait_state(op, run_id, "waiting_confirmation")
        await until(lambda: "waiting_confirmation" in states(seen), what="the gate, seen live")
        await asyncio.sleep(0.5)  # the writer stores a few ms behind the publish
        old_epoch = seen[-1].epoch
        await asyncio.to_thread(srv.restart, signal.SIGKILL)
        await until(lambda: resets, timeout=20, what="the reset hook")
        await op.confirm(run_id)  # the run waited at its gate across the crash
        await asyncio.wait_for(watching, 20)
        await sub.aclose()
    marker, snap = resets[0]
    assert len(resets) == 1 and marker.previous_epoch == old_epoch and marker.epoch != old_epoch
    assert snap["state"] == "waiting_confirmation" and snap["epoch"] == marker.epoch
    before = [e for e in seen if e.epoch == old_epoch]
    after = [e for e in seen if e.epoch == marker.epoch]
    assert [e.seq for e in before] == list(range(1, len(before) + 1))
    # after the reload: only events above the snapshot's seq, gapless, to the end
    assert [e.seq for e in after] == list(range(snap["seq"] + 1, snap["seq"] + 1 + len(after)))
    assert after[-1].data["state"] == "completed"


async def test_a_run_waiting_at_its_gate_outlives_a_server_away_longer_than_the_retries(own_server, uid, fast):
    # wait_confirmed also polls the run's state over HTTP; with the server down for
    # longer than those retries (none here) it must go on waiting: what ends the wait
    # is the assign, over the agent connection, which dials again by itself
    srv = own_server
    run_id = f"away-{uid}"
    port = srv.port
    async with AsyncClient(srv.url, srv.tokens["backend"], ws_backoff=fast, retries=0) as exe, AsyncClient(
        srv.url, srv.tokens["operator"]
    ) as op:
        stages = [Stage("a", confirm=True), Stage("b")]
        async with exe.external_run(run_id, executor="backend", stages=stages, poll_interval=0.1) as run:
            async with run.stage("a") as st:
                await st.log("before")
            waiting = asyncio.ensure_future(run.wait_confirmed())
            await wait_state(op, run_id, "waiting_confirmation")
            await asyncio.sleep(0.5)  # the writer stores a few ms behind the publish
            await asyncio.to_thread(srv.stop, signal.SIGKILL)
            await asyncio.sleep(1.0)  # away: about ten polls fail meanwhile
            assert not waiting.done(), waiting.exception()
            await asyncio.to_thread(srv.start, port)
            await op.confirm(run_id)
            assert await asyncio.wait_for(waiting, 20) == "running"
            async with run.stage("b") as st:
                await st.log("after")
        await wait_state(op, run_id, "completed")
