"""An external run driven from Python: the run is created (or attached to), its
stages are taken as the engine assigns them, and each is reported on through a
``StageHandle`` until it ends.

    async with sb.external_run("demo-project", name="video", executor="backend",
                               stages=[Stage("render", confirm=True), Stage("encode")]) as run:
        async with run.stage("render") as st:
            await st.progress(0.5, "half way")
        await run.wait_confirmed()
        async with run.stage("encode") as st:
            ...
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from .. import api, errors
from ..models import FINISHED_STATES, Stage
from .stage import ChatCallback, StageHandle, StageState

if TYPE_CHECKING:
    from ..client import AsyncClient
    from .connection import AgentConnection

log = logging.getLogger("switchboard")


class ExternalRun:
    def __init__(
        self,
        client: "AsyncClient",
        run_id: str,
        *,
        executor: str,
        name: Optional[str] = None,
        stages: Sequence[Union[Stage, str]] = (),
        create: bool = True,
        poll_interval: float = 1.0,
        finish_timeout: float = 60.0,
    ) -> None:
        self.client = client
        self.id = run_id
        self.executor = executor
        self.create = create
        self.poll_interval = poll_interval
        self.finish_timeout = finish_timeout
        self.pipeline = api.external_pipeline(name or run_id, executor, stages) if create else None
        self.snapshot: dict = {}
        self.conn: Optional["AgentConnection"] = None
        self._can_poll = True

    @property
    def state(self) -> Optional[str]:
        """The run's state at the last snapshot (``refresh()`` takes a new one)."""
        return self.snapshot.get("state")

    async def __aenter__(self) -> "ExternalRun":
        self.conn = await self.client.agent(self.executor)
        if self.create:
            self.snapshot = await self.client.create_run(self.pipeline, self.id)
        else:
            self.snapshot = await self.client.get_run(self.id)
        self.id = self.snapshot.get("id", self.id)
        return self

    async def __aexit__(self, et: Any, exc: Any, tb: Any) -> bool:
        # stages given to this executor that no one took: end them, so the run does
        # not wait for an executor that has left it
        assert self.conn is not None
        while True:
            state = self.conn.take_assign(self.id)
            if state is None:
                break
            handle = StageHandle(state, self.conn.outbox, self._upload)
            handle.start()
            seq = handle.finish(error="the executor left the run before running this stage")
            try:
                await asyncio.wait_for(self.conn.outbox.wait_applied(state.key, seq), 10)
            except (asyncio.TimeoutError, errors.SwitchboardError):
                pass
            self.conn.release(state.key)
        # the operator cancelled, or the run ended while waiting: a normal ending
        return isinstance(exc, (errors.StageCancelled, errors.RunEnded))

    async def refresh(self) -> dict:
        self.snapshot = await self.client.get_run(self.id)
        return self.snapshot

    async def _poll(self) -> Optional[str]:
        """The run's state now, or None when this token may not read the run, or when
        the server cannot answer now (down, restarting, overloaded: a transient error,
        once the HTTP retries are spent). The waits go on then: what ends them is an
        assign, over the agent connection, which dials again by itself; a run left at
        its gate while the server was away is still confirmed afterwards."""
        if not self._can_poll:
            return None
        try:
            return (await self.refresh()).get("state")
        except errors.Forbidden:
            log.warning("run %r: this token may not read the run (sub_topics); not watching its state", self.id)
            self._can_poll = False
            return None
        except errors.SwitchboardError as e:
            if not e.retryable:
                raise
            log.warning("run %r: cannot read its state now, still waiting: %s", self.id, e)
            return None

    async def wait_assigned(self, stage: Optional[str] = None) -> StageState:
        """Until the engine gives this executor ``stage`` (any stage: None)."""
        assert self.conn is not None
        while True:
            self.conn.arm()
            state = self.conn.take_assign(self.id, stage)
            if state is not None:
                return state
            now = await self._poll()
            if now in FINISHED_STATES and not self.conn.peek_assigns(self.id):
                raise errors.RunEnded(f"run {self.id!r} is {now}: no stage {stage or ''} will be assigned", now)
            await self.conn.wait_changed(self.poll_interval)

    async def wait_confirmed(self) -> str:
        """After a stage with ``confirm``: until a person confirmed it, i.e. the next
        stage is assigned (returns "running") or the run completed (returns
        "completed"). A run that ends otherwise raises ``RunEnded``."""
        assert self.conn is not None
        while True:
            self.conn.arm()
            if self.conn.peek_assigns(self.id):
                return "running"
            now = await self._poll()
            if self.conn.peek_assigns(self.id):
                return "running"
            if now == "completed":
                return now
            if now in FINISHED_STATES:
                raise errors.RunEnded(f"run {self.id!r} is {now}", now)
            await self.conn.wait_changed(self.poll_interval)

    def stage(self, stage: str, *, on_chat: Optional[ChatCallback] = None) -> "StageContext":
        """``async with run.stage("render") as st``: waits for its assign, reports it
        started, and on exit that it finished: exit code 0, or the exception as its
        error (``StageCancelled``: cancelled)."""
        return StageContext(self, stage, on_chat)

    async def _upload(self, name: str, content: Any, content_type: Optional[str]) -> Any:
        return await self.client.upload_artifact(self.id, name, content, content_type)


class StageContext:
    def __init__(self, run: ExternalRun, stage: str, on_chat: Optional[ChatCallback]):
        self.run = run
        self.stage = stage
        self.on_chat = on_chat
        self.handle: Optional[StageHandle] = None

    async def __aenter__(self) -> StageHandle:
        state = await self.run.wait_assigned(self.stage)
        assert self.run.conn is not None
        state.on_chat = self.on_chat
        self.handle = StageHandle(state, self.run.conn.outbox, self.run._upload)
        self.handle.start()
        return self.handle

    async def __aexit__(self, et: Any, exc: Any, tb: Any) -> bool:
        await finish_stage(self.handle, exc, self.run.finish_timeout)
        assert self.run.conn is not None and self.handle is not None
        self.run.conn.release(self.handle.key)
        return False


def outcome(handle: StageHandle, exc: Optional[BaseException]) -> tuple:
    """(exit_code, error) to report for a stage body that ended with ``exc``."""
    if exc is None:
        return 0, None
    if isinstance(exc, errors.StageCancelled) or (isinstance(exc, asyncio.CancelledError) and handle.cancelled):
        return None, "cancelled"
    if isinstance(exc, asyncio.CancelledError):
        return None, "the executor was stopped"
    return None, f"{type(exc).__name__}: {exc}"


async def finish_stage(handle: Optional[StageHandle], exc: Optional[BaseException], timeout: float) -> None:
    """Reports the stage's end and waits (``timeout``) until the server applied it."""
    if handle is None or handle.state.refused is not None or handle.finished:
        return
    code, error = outcome(handle, exc)
    try:
        seq = handle.finish(exit_code=code, error=error)
    except errors.StageRefused:
        return
    try:
        await asyncio.wait_for(asyncio.shield(handle._outbox.wait_applied(handle.key, seq)), timeout)
    except errors.StageRefused as refused:
        # after a cancel the engine stops waiting for the end after a grace period
        log.info("stage %r: its end was not taken: %s", handle.key.stage, refused)
    except asyncio.TimeoutError:
        log.warning("stage %r: its end was not applied within %s s (still kept, still sent)", handle.key.stage, timeout)
