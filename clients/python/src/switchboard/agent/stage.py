"""A stage the executor runs: what the server said about it (paused, cancelled, chat)
and the calls that report on it (progress, metrics, logs, artifacts), each a report
kept in the outbox until applied."""

from __future__ import annotations

import asyncio
import inspect
import mimetypes
import os
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Optional, Union

from .. import errors
from ..models import StageKey
from . import lines
from .outbox import Outbox

ChatCallback = Callable[[str], Union[None, Awaitable[None]]]
Uploader = Callable[[str, Callable[[], bytes], Optional[str]], Awaitable[Any]]

#: Longest output line accepted (a report batch is at most 1 MiB on the server).
MAX_LINE_BYTES = 256 * 1024


class StageState:
    """The server's side of an assigned stage: its work, and the signals so far."""

    def __init__(self, key: StageKey, work: Optional[dict] = None, vars: Optional[dict] = None):
        self.key = key
        self.work = work or {}
        self.vars = vars or {}
        self.paused = False
        self.cancelled = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.chat: "asyncio.Queue[str]" = asyncio.Queue()
        self.on_chat: Optional[ChatCallback] = None
        #: Called on pause/resume with the new state (the handle reports it).
        self.on_pause: Optional[Callable[[bool], None]] = None
        #: Set when the server stopped taking its reports (StageRefused).
        self.refused: Optional[BaseException] = None

    def signal(self, action: str) -> None:
        if action == "pause" and not self.paused:
            self.paused = True
            self._resumed.clear()
            if self.on_pause:
                self.on_pause(True)
        elif action == "resume" and self.paused:
            self.paused = False
            self._resumed.set()
            if self.on_pause:
                self.on_pause(False)
        elif action == "cancel":
            self.cancelled.set()
            self._resumed.set()  # wake whoever waits for a resume: it is over

    def chat_line(self, text: str) -> None:
        self.chat.put_nowait(text)
        if self.on_chat is not None:
            result = self.on_chat(text)
            if inspect.isawaitable(result):
                asyncio.ensure_future(result)

    async def wait_resumed(self) -> None:
        await self._resumed.wait()


class StageHandle:
    """``async with run.stage("render") as st:`` — report on a running stage.

    Every call returns once its report is kept (it is sent, and sent again after a
    reconnect, until the server applied it); ``flush()`` waits until it is applied.
    """

    def __init__(self, state: StageState, outbox: Outbox, uploader: Uploader):
        self.state = state
        self.key = state.key
        self._outbox = outbox
        self._upload = uploader
        self._last = 0
        self.finished = False

    # -- what the server said -----------------------------------------------------

    @property
    def paused(self) -> bool:
        return self.state.paused

    @property
    def cancelled(self) -> bool:
        return self.state.cancelled.is_set()

    @property
    def work(self) -> dict:
        return self.state.work

    @property
    def vars(self) -> dict:
        return self.state.vars

    async def wait_resumed(self) -> None:
        """Returns at once unless paused; then when resumed (or cancelled)."""
        await self.state.wait_resumed()

    async def wait_cancelled(self) -> None:
        await self.state.cancelled.wait()

    async def checkpoint(self) -> None:
        """A place where the work may stop: waits while paused, raises
        ``StageCancelled`` once cancelled."""
        if not self.cancelled:
            await self.state.wait_resumed()
        if self.cancelled:
            raise errors.StageCancelled(f"stage {self.key.stage!r} of run {self.key.run!r} was cancelled")

    async def chat_messages(self) -> AsyncIterator[str]:
        """Each chat line sent to the run, as it comes."""
        while True:
            yield await self.state.chat.get()

    # -- reports -------------------------------------------------------------------

    async def _push(self, kind: Dict[str, Any]) -> int:
        if self.finished:
            raise RuntimeError(f"stage {self.key.stage!r} has finished: no more reports")
        await self._outbox.wait_room()
        self._last = self._outbox.push(self.key, kind)
        return self._last

    async def _lines(self, out: list, stream: str = "stdout") -> None:
        lines.check_sizes(out, MAX_LINE_BYTES)
        await self._push({"kind": "output", "stream": stream, "lines": out})

    async def progress(self, fraction: float, message: Optional[str] = None) -> None:
        await self._lines([lines.progress(fraction, message)])

    async def metric(self, name: str, value: float, step: Optional[int] = None) -> None:
        await self._lines([lines.metrics({name: value}, step)])

    async def metrics(self, values: Dict[str, float], step: Optional[int] = None) -> None:
        await self._lines([lines.metrics(values, step)])

    async def log(self, text: str, stream: str = "stdout") -> None:
        """Plain text for the run's terminal (one report line per line)."""
        if stream not in ("stdout", "stderr"):
            raise errors.InvalidInput(f"stream {stream!r} must be stdout or stderr", stream)
        await self._lines(lines.plain(text) if stream == "stdout" else lines.raw(text), stream)

    async def write(self, text: str, stream: str = "stdout") -> None:
        """Lines as a process would print them: on stdout, ``::`` lines are commands."""
        if stream not in ("stdout", "stderr"):
            raise errors.InvalidInput(f"stream {stream!r} must be stdout or stderr", stream)
        await self._lines(lines.raw(text), stream)

    async def notice(self, message: str) -> None:
        await self._lines([lines.log("notice", message)])

    async def warning(self, message: str) -> None:
        await self._lines([lines.log("warning", message)])

    async def error(self, message: str) -> None:
        await self._lines([lines.log("error", message)])

    async def artifact(
        self,
        name: str,
        path: Union[str, os.PathLike, None] = None,
        *,
        data: Optional[bytes] = None,
        kind: str = "file",
        content_type: Optional[str] = None,
    ) -> None:
        """Uploads a file (``path``) or bytes (``data``) as artifact ``name`` of the
        run, then reports it (``::artifact name kind``) for the gallery."""
        line = lines.artifact(name, kind)
        if (path is None) == (data is None):
            raise errors.InvalidInput("artifact() takes a path or data, not both or neither", name)
        if path is not None:
            if not os.path.isfile(path):
                raise errors.InvalidInput(f"artifact file {os.fspath(path)!r} does not exist", path)
            content_type = content_type or mimetypes.guess_type(os.fspath(path))[0]

            def content() -> bytes:
                with open(path, "rb") as f:
                    return f.read()

        else:
            if not isinstance(data, (bytes, bytearray)):
                raise errors.InvalidInput(f"artifact data must be bytes, not {type(data).__name__}", data)
            content_type = content_type or mimetypes.guess_type(name)[0]
            blob = bytes(data)

            def content() -> bytes:
                return blob

        await self._upload(name, content, content_type or "application/octet-stream")
        await self._lines([line])

    async def flush(self, timeout: Optional[float] = None) -> None:
        """Until every report so far is applied by the server."""
        if self._last:
            await asyncio.wait_for(self._outbox.wait_applied(self.key, self._last), timeout)

    # -- the stage's own life ------------------------------------------------------

    def report_paused(self, paused: bool) -> None:
        if not self.finished:
            self._last = self._outbox.push(self.key, {"kind": "paused", "paused": paused})

    def start(self) -> None:
        self._last = self._outbox.push(self.key, {"kind": "started"})
        if self.state.paused:
            self.report_paused(True)
        self.state.on_pause = self.report_paused

    def finish(self, exit_code: Optional[int] = None, error: Optional[str] = None) -> int:
        kind: Dict[str, Any] = {"kind": "finished"}
        if exit_code is not None:
            kind["exit_code"] = exit_code
        if error is not None:
            kind["error"] = error
        self.state.on_pause = None
        self._last = self._outbox.push(self.key, kind)
        self.finished = True
        return self._last
