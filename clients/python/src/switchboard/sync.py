"""The plain (sync) client. HTTP calls go straight through ``httpx.Client`` (no
thread); subscriptions and executors run the asyncio implementation on a portal
thread, started the first time one is used."""

from __future__ import annotations

import inspect
from typing import Any, Dict, Iterator, Optional, Sequence, Union

from . import api, validate
from .auth import TokenLike, TokenSource
from .backoff import Backoff
from .client import AsyncClient, History, history_page
from .http import Content, RetryConfig, SyncHttp
from .models import Event, Reset, Stage
from .portal import Portal
from .subscription import ResetHook


class _Proxy:
    """Exposes an object of the portal's loop to sync code: its coroutine methods
    become blocking calls, its async generators plain iterators."""

    def __init__(self, portal: Portal, target: Any) -> None:
        self._portal = portal
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        portal = self._portal
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **kw: portal.call(attr(*a, **kw))
        if inspect.isasyncgenfunction(attr):

            def iterate(*a: Any, **kw: Any) -> Iterator[Any]:
                agen = attr(*a, **kw)
                try:
                    while True:
                        yield portal.call(agen.__anext__())
                except StopAsyncIteration:
                    return

            return iterate
        return attr


class _SyncContext:
    def __init__(self, portal: Portal, ctx: Any, wrap: bool = True) -> None:
        self._portal, self._ctx, self._wrap = portal, ctx, wrap

    def __enter__(self) -> Any:
        value = self._portal.call(self._ctx.__aenter__())
        return _Proxy(self._portal, value) if self._wrap else value

    def __exit__(self, et: Any, exc: Any, tb: Any) -> bool:
        return bool(self._portal.call(self._ctx.__aexit__(et, exc, tb)))


class SyncExternalRun(_Proxy):
    def __enter__(self) -> "SyncExternalRun":
        self._portal.call(self._target.__aenter__())
        return self

    def __exit__(self, et: Any, exc: Any, tb: Any) -> bool:
        return bool(self._portal.call(self._target.__aexit__(et, exc, tb)))

    def stage(self, stage: str, **kwargs: Any) -> _SyncContext:
        return _SyncContext(self._portal, self._target.stage(stage, **kwargs))


class SyncSubscription:
    def __init__(self, portal: Portal, sub: Any) -> None:
        self._portal, self.subscription = portal, sub

    def __iter__(self) -> "SyncSubscription":
        return self

    def __next__(self) -> Union[Event, Reset]:
        try:
            return self._portal.call(self.subscription.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def __enter__(self) -> "SyncSubscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._portal.call(self.subscription.aclose())


class Client:
    """``with Client("http://127.0.0.1:3000", token=...) as sb: sb.publish(...)``

    The same arguments as ``AsyncClient``; a token callback must be a plain function.
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
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._options = dict(
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            ws_backoff=ws_backoff,
            max_message_bytes=max_message_bytes,
            max_report_bytes=max_report_bytes,
            max_pipeline_bytes=max_pipeline_bytes,
        )
        config = RetryConfig(retries=retries, backoff=backoff or Backoff(initial=0.5, cap=10.0))
        self.http = SyncHttp(self.url, TokenSource(token), config, timeout, None)
        self.max_message_bytes = max_message_bytes
        self.max_report_bytes = max_report_bytes
        self.max_pipeline_bytes = max_pipeline_bytes
        self._portal = Portal()
        self._async: Optional[AsyncClient] = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._async is not None:
            self._portal.call(self._async.aclose())
            self._async = None
        self._portal.stop()
        self.http.close()

    def _aio(self) -> AsyncClient:
        """The asyncio client behind subscriptions and executors, on the portal."""
        if self._async is None:

            async def make() -> AsyncClient:
                return AsyncClient(self.url, self._token, **self._options)  # type: ignore[arg-type]

            self._async = self._portal.call(make())
        return self._async

    # -- HTTP, straight ------------------------------------------------------------------

    def publish(self, topic: str, event: str, data: Any = None) -> int:
        return int(self.http.call(api.publish(topic, event, data, self.max_message_bytes))["seq"])

    def history(self, topic: str, since: int = 0, limit: Optional[int] = None) -> History:
        return history_page(self.http.call(api.history(topic, since, limit)))

    def history_all(self, topic: str, since: int = 0) -> History:
        """Every retained event after ``since``, page after page."""
        page = self.history(topic, since, 1000)
        events = list(page.events)
        while events and events[-1].seq < page.seq:
            page = self.history(topic, events[-1].seq, 1000)
            if not page.events:
                break
            events.extend(page.events)
        return History(events, page.seq, page.epoch)

    def create_run(self, pipeline: Union[str, Dict[str, Any]], run_id: Optional[str] = None) -> dict:
        return self.http.call(api.create_run(pipeline, run_id, self.max_pipeline_bytes))

    def get_run(self, run_id: str) -> dict:
        return self.http.call(api.get_run(run_id))

    def list_runs(self, **params: Any) -> dict:
        return self.http.call(api.list_runs(params or None))

    def pause(self, run_id: str) -> dict:
        return self.http.call(api.control(run_id, "pause"))

    def resume(self, run_id: str) -> dict:
        return self.http.call(api.control(run_id, "resume"))

    def cancel(self, run_id: str) -> dict:
        return self.http.call(api.control(run_id, "cancel"))

    def confirm(self, run_id: str) -> dict:
        return self.http.call(api.control(run_id, "confirm"))

    def restart_stage(self, run_id: str, stage: str) -> dict:
        return self.http.call(api.restart_stage(run_id, stage))

    def chat(self, run_id: str, text: str) -> dict:
        return self.http.call(api.chat(run_id, text, self.max_message_bytes))

    def upload_artifact(self, run_id: str, name: str, content: Content, content_type: Optional[str] = None) -> dict:
        return self.http.call(api.upload(run_id, name, content, content_type))

    def download_artifact(self, run_id: str, name: str) -> bytes:
        return self.http.call(api.download(run_id, name))

    def post_reports(self, run_id: str, reports: Sequence[Dict[str, Any]]) -> dict:
        return self.http.call(api.reports(run_id, reports, self.max_report_bytes))

    # -- through the portal --------------------------------------------------------------

    def subscribe(
        self,
        topic: str,
        *,
        since: Optional[int] = None,
        epoch: Optional[str] = None,
        on_reset: Optional[ResetHook] = None,
        backoff: Optional[Backoff] = None,
        max_attempts: Optional[int] = None,
    ) -> SyncSubscription:
        """An iterator of the topic's events; ``on_reset`` runs on the portal thread."""
        sub = self._aio().subscribe(
            topic, since=since, epoch=epoch, on_reset=on_reset, backoff=backoff, max_attempts=max_attempts
        )
        return SyncSubscription(self._portal, sub)

    def external_run(
        self,
        run_id: str,
        *,
        executor: str,
        name: Optional[str] = None,
        stages: Sequence[Union[Stage, str]] = (),
        create: bool = True,
        poll_interval: float = 1.0,
    ) -> SyncExternalRun:
        run = self._aio().external_run(
            run_id, executor=executor, name=name, stages=stages, create=create, poll_interval=poll_interval
        )
        return SyncExternalRun(self._portal, run)

    def http_stage(self, run_id: str, stage: str, **kwargs: Any) -> _SyncContext:
        return _SyncContext(self._portal, self._aio().http_stage(run_id, stage, **kwargs))
