"""Reporting a stage over plain HTTP (``POST /api/v1/workflows/{id}/reports``), for
a backend that holds no WebSocket: the same ``StageHandle``, its reports batched
and posted, each batch retried until answered. A batch sent twice is harmless (the
server skips seqs it applied); a 409 with ``error.expected`` resends from that seq.
With no connection the server cannot reach the stage: pause, cancel and chat answer
``agent_offline``, and the stage must report at least every ``--agent-grace-s``
(30 s), so an empty batch is posted every ``keepalive_s`` to say it is alive.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Optional

from .. import api, errors
from ..backoff import Backoff
from ..models import FINISHED_STATES, StageKey
from .outbox import Outbox
from .run import finish_stage
from .stage import StageHandle, StageState

if TYPE_CHECKING:
    from ..client import AsyncClient

log = logging.getLogger("switchboard")


class HttpStage:
    """``async with sb.http_stage("demo-project", "render") as st:``"""

    def __init__(
        self,
        client: "AsyncClient",
        run_id: str,
        stage: str,
        *,
        attempt: Optional[int] = None,
        interval: float = 0.05,
        keepalive_s: float = 10.0,
        poll_interval: float = 0.5,
        finish_timeout: float = 60.0,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.stage = stage
        self.attempt = attempt
        self.interval = interval
        self.keepalive_s = keepalive_s
        self.poll_interval = poll_interval
        self.finish_timeout = finish_timeout
        self.outbox = Outbox()
        self.handle: Optional[StageHandle] = None
        self._pump: Optional[asyncio.Task] = None
        #: POSTs sent (batches and keepalives), for tests and logs.
        self.posts = 0

    async def _running_attempt(self) -> int:
        """Waits until the engine started the stage; its attempt."""
        while True:
            snap = await self.client.get_run(self.run_id)
            stage = next((s for s in snap.get("stages", []) if s.get("id") == self.stage), None)
            if stage is None:
                raise errors.NotFound(f"run {self.run_id!r} has no stage {self.stage!r}")
            if stage.get("status") in ("running", "paused"):
                return int(stage.get("attempt") or 1)
            if snap.get("state") in FINISHED_STATES:
                raise errors.RunEnded(f"run {self.run_id!r} is {snap['state']}", snap["state"])
            await asyncio.sleep(self.poll_interval)

    async def __aenter__(self) -> StageHandle:
        attempt = self.attempt or await self._running_attempt()
        key = StageKey(self.run_id, self.stage, attempt)
        self.handle = StageHandle(StageState(key), self.outbox, self._upload)
        self.handle.start()
        self._pump = asyncio.ensure_future(self._run(key))
        return self.handle

    async def __aexit__(self, et: Any, exc: Any, tb: Any) -> bool:
        try:
            await finish_stage(self.handle, exc, self.finish_timeout)
        finally:
            if self._pump is not None:
                self._pump.cancel()
                await asyncio.gather(self._pump, return_exceptions=True)
        return False

    async def _upload(self, name: str, content: Any, content_type: Optional[str]) -> Any:
        return await self.client.upload_artifact(self.run_id, name, content, content_type)

    async def _run(self, key: StageKey) -> None:
        backoff = Backoff(initial=0.5, cap=10.0)
        failures = 0
        while True:
            batch = self.outbox.take_batch(key)
            if not batch:
                try:
                    await asyncio.wait_for(self.outbox.ready.wait(), self.keepalive_s)
                    await asyncio.sleep(self.interval)  # let a few lines gather
                    continue
                except asyncio.TimeoutError:
                    pass
            try:
                self.posts += 1
                answer = await self.client.http.call(api.reports(self.run_id, batch, self.client.max_report_bytes))
                failures = 0
                if batch:
                    self.outbox.applied(key, int(answer.get("applied_through", 0)))
            except errors.Conflict as exc:
                if exc.expected is not None:
                    self.outbox.resume_from(key, exc.expected)
                    continue
                self._refused(key, exc)
                return
            except (errors.NotFound, errors.Forbidden, errors.BadRequest) as exc:
                self._refused(key, exc)
                return
            except errors.SwitchboardError as exc:
                # the call's own retries are spent (the server is away): keep everything, try again
                log.warning("reports of stage %r: %s; trying again", key.stage, exc)
                self.outbox.reconnected()
                await asyncio.sleep(backoff.delay(failures))
                failures += 1

    def _refused(self, key: StageKey, exc: errors.SwitchboardError) -> None:
        log.warning("reports of stage %r refused: %s", key.stage, exc)
        err = errors.StageRefused(str(exc))
        self.outbox.forget(key, err)
        assert self.handle is not None
        self.handle.state.refused = err
        self.handle.state.signal("cancel")
