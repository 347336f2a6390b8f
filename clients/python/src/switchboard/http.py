"""The HTTP transport, sync and async: one request, its retries (``retry.py`` says
which), the token refreshed once on 401, and every error answer turned into a typed
``SwitchboardError``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Union

import httpx

from . import retry
from .auth import TokenSource
from .backoff import Backoff

Content = Union[bytes, Callable[[], bytes], None]


@dataclass
class Call:
    """One API request, described once and sent by either transport."""

    method: str
    path: str
    #: What it is, for error messages ("publish to 'session:abc'").
    what: str
    content: Content = None
    content_type: Optional[str] = "application/json"
    params: Optional[Dict[str, Any]] = None
    idempotent: bool = False
    #: A 500 with the server's error body means it was not applied (see retry.py).
    safe_500: bool = False
    headers: Dict[str, str] = field(default_factory=dict)
    #: Answer the body's bytes as they are (a downloaded artifact).
    raw: bool = False


@dataclass
class RetryConfig:
    #: Retries after the first try (so `retries + 1` tries at most).
    retries: int = 5
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.5, cap=10.0))


def _headers(call: Call, token: Optional[str]) -> Dict[str, str]:
    headers = dict(call.headers)
    if call.content is not None and call.content_type:
        headers["content-type"] = call.content_type
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def _body(call: Call) -> Optional[bytes]:
    return call.content() if callable(call.content) else call.content


def _parse(resp: httpx.Response, raw: bool = False) -> Any:
    if raw:
        return resp.content
    if "json" in resp.headers.get("content-type", ""):
        try:
            return resp.json()
        except ValueError:
            return resp.text
    return resp.text


def _verdict(resp: httpx.Response, call: Call) -> retry.Verdict:
    return retry.on_status(resp.status_code, resp.headers, _parse(resp), resp.text, call.idempotent, call.safe_500)


class AsyncHttp:
    def __init__(
        self, base_url: str, tokens: TokenSource, config: RetryConfig, timeout: float, client: Optional[httpx.AsyncClient]
    ) -> None:
        self.tokens = tokens
        self.config = config
        self.client = client or httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def call(self, call: Call) -> Any:
        refreshed = False
        attempt = 0
        while True:
            token = await self.tokens.get()
            try:
                resp = await self.client.request(
                    call.method, call.path, content=_body(call), params=call.params, headers=_headers(call, token)
                )
            except httpx.TransportError as exc:
                verdict = retry.on_exception(exc, call.idempotent, call.what)
            else:
                if resp.status_code < 400:
                    return _parse(resp, call.raw)
                if resp.status_code == 401 and self.tokens.refreshable and not refreshed:
                    refreshed = True
                    await self.tokens.refresh()
                    continue
                verdict = _verdict(resp, call)
            if not verdict.retry or attempt >= self.config.retries:
                raise verdict.error
            wait = verdict.delay if verdict.delay is not None else self.config.backoff.delay(attempt)
            attempt += 1
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self.client.aclose()


class SyncHttp:
    def __init__(
        self, base_url: str, tokens: TokenSource, config: RetryConfig, timeout: float, client: Optional[httpx.Client]
    ) -> None:
        self.tokens = tokens
        self.config = config
        self.client = client or httpx.Client(base_url=base_url, timeout=timeout)

    def call(self, call: Call) -> Any:
        refreshed = False
        attempt = 0
        while True:
            token = self.tokens.get_sync()
            try:
                resp = self.client.request(
                    call.method, call.path, content=_body(call), params=call.params, headers=_headers(call, token)
                )
            except httpx.TransportError as exc:
                verdict = retry.on_exception(exc, call.idempotent, call.what)
            else:
                if resp.status_code < 400:
                    return _parse(resp, call.raw)
                if resp.status_code == 401 and self.tokens.refreshable and not refreshed:
                    refreshed = True
                    self.tokens.refresh_sync()
                    continue
                verdict = _verdict(resp, call)
            if not verdict.retry or attempt >= self.config.retries:
                raise verdict.error
            wait = verdict.delay if verdict.delay is not None else self.config.backoff.delay(attempt)
            attempt += 1
            time.sleep(wait)

    def close(self) -> None:
        self.client.close()
