"""The asyncio client: the HTTP API, resumable subscriptions, executors and runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import httpx

from . import api, validate
from .agent.connection import AgentConnection
from .agent.http_stage import HttpStage
from .agent.run import ExternalRun
from .auth import TokenLike, TokenSource
from .backoff import Backoff
from .http import AsyncHttp, Content, RetryConfig
from .models import Event, Stage
from .subscription import ResetHook, Subscription


@dataclass
class History:
    events: List[Event]
    #: The topic's last seq, and its epoch, when the page was read.
    seq: int
    epoch: str


def ws_base(url: str) -> str:
    url = url.rstrip("/")
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    raise validate.InvalidInput(f"server URL {url!r} must start with http:// or https://", url)


def history_page(body: Dict[str, Any]) -> History:
    epoch = str(body.get("epoch", ""))
    return History([Event.from_message(e, epoch) for e in body.get("events", [])], int(body.get("seq", 0)), epoch)


class AsyncClient:
    """``async with AsyncClient("http://127.0.0.1:3000", token=...) as sb:``

    ``token``: a string, or a callable (sync or async) returning one, asked again
    once when the server refuses the current one. ``retries``/``backoff``: HTTP retries
    (see ``retry.py`` for which); ``ws_backoff``: redialling WebSockets.
    ``max_message_bytes``: the server's ``--max-message-bytes``, checked before sending.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:3000",
        token: TokenLike = None,
        *,
        timeout: float = 10.0,
        retries: int = 5,
        backoff: Optional[Backoff] = None,
        ws_backoff: Optional[Backoff] = None,
        max_message_bytes: int = validate.DEFAULT_MAX_MESSAGE_BYTES,
        max_report_bytes: int = validate.DEFAULT_MAX_REPORT_BYTES,
        max_pipeline_bytes: int = api.DEFAULT_MAX_PIPELINE_BYTES,
        http_client: Optional[httpx.AsyncClient] = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.ws_url = ws_base(self.url)
        self.tokens = TokenSource(token)
        config = RetryConfig(retries=retries, backoff=backoff or Backoff(initial=0.5, cap=10.0))
        self.http = AsyncHttp(self.url, self.tokens, config, timeout, http_client)
        self.ws_backoff = ws_backoff or Backoff()
        self.max_message_bytes = max_message_bytes
        self.max_report_bytes = max_report_bytes
        self.max_pipeline_bytes = max_pipeline_bytes
        self._agents: Dict[str, AgentConnection] = {}

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for conn in self._agents.values():
            await conn.aclose()
        self._agents.clear()
        await self.http.aclose()

    # -- topics -------------------------------------------------------------------------

    async def publish(self, topic: str, event: str, data: Any = None) -> int:
        """Publishes one event; its seq. Retried only where it cannot duplicate."""
        answer = await self.http.call(api.publish(topic, event, data, self.max_message_bytes))
        return int(answer["seq"])

    async def history(self, topic: str, since: int = 0, limit: Optional[int] = None) -> History:
        return history_page(await self.http.call(api.history(topic, since, limit)))

    async def history_all(self, topic: str, since: int = 0) -> History:
        """Every retained event after ``since``, page after page."""
        page = await self.history(topic, since, 1000)
        events = list(page.events)
        while events and events[-1].seq < page.seq:
            page = await self.history(topic, events[-1].seq, 1000)
            if not page.events:
                break
            events.extend(page.events)
        return History(events, page.seq, page.epoch)

    def subscribe(
        self,
        topic: str,
        *,
        since: Optional[int] = None,
        epoch: Optional[str] = None,
        on_reset: Optional[ResetHook] = None,
        backoff: Optional[Backoff] = None,
        max_attempts: Optional[int] = None,
    ) -> Subscription:
        """The topic's events, resumed across reconnects (see ``Subscription``)."""
        return Subscription(
            self.ws_url,
            self.tokens,
            topic,
            since=since,
            epoch=epoch,
            on_reset=on_reset,
            backoff=backoff or self.ws_backoff,
            max_attempts=max_attempts,
        )

    # -- runs -----------------------------------------------------------------------------

    async def create_run(self, pipeline: Union[str, Dict[str, Any]], run_id: Optional[str] = None) -> dict:
        return await self.http.call(api.create_run(pipeline, run_id, self.max_pipeline_bytes))

    async def get_run(self, run_id: str) -> dict:
        return await self.http.call(api.get_run(run_id))

    async def list_runs(self, **params: Any) -> dict:
        return await self.http.call(api.list_runs(params or None))

    async def pause(self, run_id: str) -> dict:
        return await self.http.call(api.control(run_id, "pause"))

    async def resume(self, run_id: str) -> dict:
        return await self.http.call(api.control(run_id, "resume"))

    async def cancel(self, run_id: str) -> dict:
        return await self.http.call(api.control(run_id, "cancel"))

    async def confirm(self, run_id: str) -> dict:
        return await self.http.call(api.control(run_id, "confirm"))

    async def restart_stage(self, run_id: str, stage: str) -> dict:
        return await self.http.call(api.restart_stage(run_id, stage))

    async def chat(self, run_id: str, text: str) -> dict:
        return await self.http.call(api.chat(run_id, text, self.max_message_bytes))

    async def upload_artifact(self, run_id: str, name: str, content: Content, content_type: Optional[str] = None) -> dict:
        return await self.http.call(api.upload(run_id, name, content, content_type))

    async def download_artifact(self, run_id: str, name: str) -> bytes:
        return await self.http.call(api.download(run_id, name))

    async def post_reports(self, run_id: str, reports: Sequence[Dict[str, Any]]) -> dict:
        """One raw report batch (``http_stage`` numbers and retries them for you)."""
        return await self.http.call(api.reports(run_id, reports, self.max_report_bytes))

    # -- executors ------------------------------------------------------------------------

    async def agent(self, name: str, *, capabilities: Sequence[str] = (), concurrency: int = 1) -> AgentConnection:
        """The (shared, connected) agent connection of executor ``name``."""
        conn = self._agents.get(name)
        if conn is None:
            conn = AgentConnection(
                self.ws_url,
                self.tokens,
                name,
                capabilities=capabilities,
                concurrency=concurrency,
                backoff=self.ws_backoff,
                max_report_bytes=self.max_report_bytes,
            )
            self._agents[name] = conn
        await conn.start()
        return conn

    def external_run(
        self,
        run_id: str,
        *,
        executor: str,
        name: Optional[str] = None,
        stages: Sequence[Union[Stage, str]] = (),
        create: bool = True,
        poll_interval: float = 1.0,
    ) -> ExternalRun:
        """``async with sb.external_run(...) as run``: see ``ExternalRun``. With
        ``create=False`` it takes up a run created elsewhere (by its id)."""
        return ExternalRun(
            self, run_id, executor=executor, name=name, stages=stages, create=create, poll_interval=poll_interval
        )

    def http_stage(self, run_id: str, stage: str, **kwargs: Any) -> HttpStage:
        """``async with sb.http_stage(run_id, stage) as st``: report over HTTP only."""
        return HttpStage(self, run_id, stage, **kwargs)
