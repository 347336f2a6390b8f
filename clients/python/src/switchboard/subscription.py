"""A topic's events as an async iterator that survives disconnections.

It keeps the last seq and epoch it delivered; after a drop it dials again (backoff
with full jitter) and subscribes with ``since``/``epoch``, so the server replays what
was missed (``recovered: true``). Events at or below the last seq are dropped (no
duplicate), and a gap, which the protocol forbids, is answered by resubscribing
rather than skipping. When the server cannot resume (``recovered: false``) the caller
is told: its ``on_reset`` hook is called, or a ``Reset`` marker is yielded.
"""

from __future__ import annotations

import collections
import inspect
import itertools
import json
import logging
from typing import Any, Awaitable, Callable, Deque, Optional, Union
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from . import errors, validate
from .auth import TokenSource
from .backoff import Backoff
from .models import Event, Reset
from .wsconnect import Retry, close_code, close_reason, dial, recv_json

log = logging.getLogger("switchboard")

ResetHook = Callable[[Reset], Union[None, int, Awaitable[Optional[int]]]]


class Subscription:
    """``async for event in sb.subscribe("workflow:42"): ...``

    ``since``/``epoch``: where a previous reader stopped (``position``). ``on_reset``:
    called with a ``Reset`` when the server cannot resume; it may return the seq of
    the snapshot it reloaded, and events up to it are then skipped. Without it, the
    ``Reset`` is yielded among the events.
    """

    def __init__(
        self,
        ws_base: str,
        tokens: TokenSource,
        topic: str,
        *,
        since: Optional[int] = None,
        epoch: Optional[str] = None,
        on_reset: Optional[ResetHook] = None,
        backoff: Optional[Backoff] = None,
        open_timeout: float = 10.0,
        max_attempts: Optional[int] = None,
    ) -> None:
        self.topic = validate.topic(topic)
        if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
            raise errors.InvalidInput(f"since must be a seq (an int >= 0), not {since!r}", since)
        self._ws_base = ws_base
        self._tokens = tokens
        self._on_reset = on_reset
        self._backoff = backoff or Backoff()
        self._open_timeout = open_timeout
        self._max_attempts = max_attempts
        self.last_seq: Optional[int] = since
        self.epoch: Optional[str] = epoch
        self._skip_through: Optional[int] = None
        self._ws: Optional[ClientConnection] = None
        self._pending: Deque[Union[Event, Reset]] = collections.deque()
        self._ids = itertools.count(1)
        self._closed = False
        self._policy_closed = False
        #: How many times it connected (1 + reconnections), and resets seen: for tests and logs.
        self.connections = 0
        self.resets = 0
        #: The server's limits, from its `hello`.
        self.limits: dict = {}

    @property
    def position(self) -> tuple:
        """(last seq delivered, epoch): pass them as since/epoch to resume later."""
        return (self.last_seq, self.epoch)

    def __aiter__(self) -> "Subscription":
        return self

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        if self._ws is not None:
            ws, self._ws = self._ws, None
            await ws.close()

    async def __anext__(self) -> Union[Event, Reset]:
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._closed:
                raise StopAsyncIteration
            if self._ws is None:
                await self._connect()
                continue
            try:
                msg = await recv_json(self._ws)
            except ConnectionClosed as exc:
                self._on_closed(exc)
                continue
            item = await self._on_message(msg)
            if item is not None:
                return item

    def _on_closed(self, exc: ConnectionClosed) -> None:
        self._ws = None
        code = close_code(exc)
        if code == 1000:
            log.info("%s: the server closed the connection normally", self.topic)
            self._closed = True
        elif code == 1008:
            self._policy_closed = True
        else:
            log.info("%s: connection lost (%s %s); resuming after seq %s", self.topic, code, close_reason(exc), self.last_seq)

    async def _on_message(self, msg: dict) -> Optional[Event]:
        kind = msg.get("type")
        if kind == "event" and msg.get("topic") == self.topic:
            seq = int(msg["seq"])
            if self.last_seq is not None and seq <= self.last_seq:
                return None  # sent again (a replay overlapping what came live): seen already
            if self.last_seq is not None and seq != self.last_seq + 1:
                log.warning("%s: seq %s after %s: a gap; resubscribing", self.topic, seq, self.last_seq)
                await self._drop()
                return None
            self.last_seq = seq
            if self._skip_through is not None and seq <= self._skip_through:
                return None
            return Event.from_message(msg, self.epoch or "")
        if kind == "error":
            err = errors.from_ws_error(msg)
            if not err.retryable:
                raise err
            log.info("%s: %s; reconnecting", self.topic, err)
            await self._drop()
        return None

    async def _drop(self) -> None:
        if self._ws is not None:
            ws, self._ws = self._ws, None
            await ws.close()

    def _url(self, token: Optional[str]) -> str:
        return f"{self._ws_base}/ws" + (f"?token={quote(token, safe='')}" if token else "")

    async def _handshake(self, ws: ClientConnection) -> dict:
        hello = await recv_json(ws)
        if hello.get("type") != "hello":
            raise Retry(f"expected hello, got {hello.get('type')!r}")
        self.limits = hello.get("limits") or {}
        sub_id = next(self._ids)
        msg: dict = {"type": "subscribe", "topic": self.topic, "id": sub_id}
        if self.last_seq is not None:
            msg["since"] = self.last_seq
            if self.epoch is not None:
                msg["epoch"] = self.epoch
        await ws.send(json.dumps(msg))
        while True:
            reply = await recv_json(ws)
            if reply.get("id") != sub_id:
                continue
            if reply.get("type") == "subscribed":
                return reply
            if reply.get("type") == "error":
                err = errors.from_ws_error(reply)
                if err.retryable:
                    raise Retry(str(err))
                raise err

    async def _connect(self) -> None:
        holder: dict = {}

        async def handshake(ws: ClientConnection) -> dict:
            reply = await self._handshake(ws)
            holder["ws"] = ws
            return reply

        reply = await dial(
            self._url,
            self._tokens,
            self._backoff,
            handshake,
            open_timeout=self._open_timeout,
            max_attempts=self._max_attempts,
            what=f"subscribe {self.topic!r}",
            policy_refused=self._policy_closed,
        )
        self._policy_closed = False
        self._ws = holder["ws"]
        self.connections += 1
        if self._closed:
            await self._drop()
            return
        await self._subscribed(reply)

    async def _subscribed(self, reply: dict) -> None:
        seq, epoch = int(reply["seq"]), str(reply["epoch"])
        resumed_from = self.last_seq
        if resumed_from is None or reply.get("recovered", True):
            # live from here (first subscription), or the replay after `since` follows
            if resumed_from is None:
                self.last_seq = seq
            self.epoch = epoch
            return
        self.resets += 1
        marker = Reset(self.topic, seq, epoch, resumed_from, self.epoch)
        log.info("%s: cannot resume after seq %s (epoch %s): live from %s (epoch %s)", self.topic, resumed_from, self.epoch, seq + 1, epoch)
        self.last_seq, self.epoch = seq, epoch
        self._skip_through = None
        if self._on_reset is None:
            self._pending.append(marker)
            return
        result = self._on_reset(marker)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, int) and not isinstance(result, bool):
            self._skip_through = result
