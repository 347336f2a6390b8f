"""The executor's connection, ``/api/v1/agents/connect`` (docs/agents.md).

One per executor name (a second connection under the same name replaces the first
on the server), shared by every run that names it. It registers, takes ``assign``,
``signal`` and ``chat`` (each acknowledged), sends the outbox's reports and drops
them once ``applied``. When the connection drops it dials again with backoff,
registers with the stages it still runs, and sends again from ``welcome``'s
``next_seq``: a report is applied once, whatever was in flight.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import Any, Deque, Dict, Optional, Sequence

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .. import errors, validate
from ..auth import TokenSource
from ..backoff import Backoff
from ..models import StageKey
from ..wsconnect import Retry, close_code, close_reason, dial, recv_json
from .outbox import Outbox
from .stage import StageState

log = logging.getLogger("switchboard")


class AgentConnection:
    def __init__(
        self,
        ws_base: str,
        tokens: TokenSource,
        name: str,
        *,
        capabilities: Sequence[str] = (),
        concurrency: int = 1,
        backoff: Optional[Backoff] = None,
        max_report_bytes: int = validate.DEFAULT_MAX_REPORT_BYTES,
        outbox: Optional[Outbox] = None,
    ) -> None:
        self.name = validate.agent_name(name, "executor name")
        self.capabilities = [validate.agent_name(c, "capability") for c in capabilities]
        self.concurrency = concurrency
        self._ws_base = ws_base
        self._tokens = tokens
        self._backoff = backoff or Backoff()
        self.max_report_bytes = max_report_bytes
        self.outbox = outbox or Outbox()
        #: Every stage assigned on this connection and not yet forgotten.
        self.stages: Dict[StageKey, StageState] = {}
        #: Assigns not yet taken by a run, per run id, in order.
        self._unclaimed: Dict[str, Deque[StageKey]] = collections.defaultdict(collections.deque)
        self._changed = asyncio.Event()
        self.connected = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self._ws: Optional[ClientConnection] = None
        self._fatal: Optional[BaseException] = None
        self._policy_closed = False
        #: How many sessions it had (1 + reconnections): for tests and logs.
        self.sessions = 0
        self.heartbeat_ms: Optional[int] = None

    # -- life ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connects (in the background from now on) and waits for the first welcome."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        waiter = asyncio.ensure_future(self.connected.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._task is not None and self._task.done() and not self._task.cancelled():
            exc = self._task.exception()
            if exc is not None:
                raise exc

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        self.connected.clear()

    async def drop(self) -> None:
        """Closes the current connection (it is dialled again): for tests and tools."""
        if self._ws is not None:
            self._ws.transport.abort()

    # -- what runs take -------------------------------------------------------------

    def take_assign(self, run: str, stage: Optional[str] = None) -> Optional[StageState]:
        """The oldest unclaimed assign of ``run`` (of ``stage``), if any."""
        queue = self._unclaimed.get(run)
        for key in list(queue or ()):
            if stage is None or key.stage == stage:
                queue.remove(key)
                return self.stages[key]
        return None

    def peek_assigns(self, run: str) -> list:
        return list(self._unclaimed.get(run, ()))

    def arm(self) -> None:
        """Call before looking at the assigns; ``wait_changed`` then returns at once
        if one came in since (no wake-up lost between the look and the wait)."""
        self._changed.clear()

    async def wait_changed(self, timeout: float) -> None:
        """Until something was assigned since ``arm()`` (or ``timeout``)."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        self.raise_if_failed()

    # -- the connection ---------------------------------------------------------------

    def _url(self, _token: Optional[str]) -> str:
        return f"{self._ws_base}/api/v1/agents/connect"

    async def _register(self, ws: ClientConnection) -> dict:
        keys = list(dict.fromkeys([*self.outbox.running(), *self.stages]))
        register = {
            "type": "register",
            "name": self.name,
            "capabilities": self.capabilities,
            "concurrency": self.concurrency,
            "running": [k.as_dict() for k in keys],
        }
        await ws.send(json.dumps(register))
        while True:
            msg = await recv_json(ws)
            if msg.get("type") == "welcome":
                return msg
            if msg.get("type") == "refused":
                raise Retry(f"register refused: {msg.get('code')}: {msg.get('message')}")

    def release(self, key: StageKey) -> None:
        """The stage is over for its run: no longer listed when registering (its
        outbox entry lingers a while, see Outbox)."""
        self.stages.pop(key, None)
        queue = self._unclaimed.get(key.run)
        if queue and key in queue:
            queue.remove(key)

    async def _run(self) -> None:
        try:
            while True:
                holder: dict = {}

                async def handshake(ws: ClientConnection) -> dict:
                    welcome = await self._register(ws)
                    holder["ws"] = ws
                    return welcome

                welcome = await dial(
                    self._url,
                    self._tokens,
                    self._backoff,
                    handshake,
                    bearer=True,
                    what=f"agent {self.name!r}",
                    policy_refused=self._policy_closed,
                )
                self._policy_closed = False
                self._ws = holder["ws"]
                self.sessions += 1
                self.outbox.reconnected()
                self._welcome(welcome)
                self.connected.set()
                await self._session(self._ws)
                self.connected.clear()
                self._ws = None
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fatal = exc
            self._changed.set()
            log.error("agent %r: giving up: %s", self.name, exc)

    def _welcome(self, msg: dict) -> None:
        self.heartbeat_ms = msg.get("heartbeat_ms")
        for r in msg.get("resume", []):
            self.outbox.resume_from(StageKey.from_message(r), int(r["next_seq"]))
        for k in msg.get("unknown", []):
            key = StageKey.from_message(k)
            self._forget(key, f"the server no longer knows stage {key.stage!r} of run {key.run!r}")

    def _forget(self, key: StageKey, why: str) -> None:
        err = errors.StageRefused(why)
        self.outbox.forget(key, err)
        state = self.stages.get(key)
        if state is not None:
            state.refused = err
            state.signal("cancel")
        self.release(key)
        self._changed.set()

    async def _session(self, ws: ClientConnection) -> None:
        sender = asyncio.ensure_future(self._send_loop(ws))
        receiver = asyncio.ensure_future(self._recv_loop(ws))
        try:
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver):
                task.cancel()
            await asyncio.gather(sender, receiver, return_exceptions=True)
            await ws.close()
        for task in done:
            exc = task.exception()
            if isinstance(exc, ConnectionClosed):
                code = close_code(exc)
                if code == 1008:
                    self._policy_closed = True
                log.info("agent %r: connection lost (%s %s); dialling again", self.name, code, close_reason(exc))
            elif exc is not None:
                raise exc

    async def _recv_loop(self, ws: ClientConnection) -> None:
        while True:
            msg = await recv_json(ws)
            try:
                reply = self._on_message(msg)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("agent %r: cannot read %.200s: %r", self.name, json.dumps(msg), exc)
                continue
            if reply is not None:
                await ws.send(json.dumps(reply))

    async def _send_loop(self, ws: ClientConnection) -> None:
        while True:
            batch = self.outbox.take_batch()
            if not batch:
                await self.outbox.ready.wait()
                continue
            await ws.send(json.dumps({"type": "reports", "reports": batch}))

    def _on_message(self, msg: Dict[str, Any]) -> Optional[dict]:
        kind = msg.get("type")
        if kind == "assign":
            key = StageKey.from_message(msg["key"])
            if key not in self.stages:
                self.stages[key] = StageState(key, msg.get("work"), msg.get("vars"))
                self._unclaimed[key.run].append(key)
                self._changed.set()
            return {"type": "ack", "id": msg["id"]}
        if kind == "signal":
            state = self.stages.get(StageKey.from_message(msg["key"]))
            if state is not None:
                state.signal(msg.get("action", ""))
            return {"type": "ack", "id": msg["id"]}
        if kind == "chat":
            state = self.stages.get(StageKey.from_message(msg["key"]))
            if state is not None:
                state.chat_line(str(msg.get("text", "")))
            return {"type": "ack", "id": msg["id"]}
        if kind == "applied":
            self.outbox.applied(StageKey.from_message(msg["key"]), int(msg["seq"]))
        elif kind == "refused":
            self._refused(msg)
        return None

    def _refused(self, msg: Dict[str, Any]) -> None:
        key = StageKey.from_message(msg["key"]) if msg.get("key") else None
        text = f"{msg.get('code')}: {msg.get('message')}"
        if key is not None and msg.get("expected") is not None:
            self.outbox.resume_from(key, int(msg["expected"]))
        elif key is not None:
            log.warning("agent %r: reports of stage %r refused (%s); dropping them", self.name, key.stage, text)
            self._forget(key, text)
        else:
            log.warning("agent %r: the server refused a message: %s", self.name, text)
