"""A small TCP proxy in front of the server that breaks things on purpose: it can
refuse connections (not listening), answer 503 itself, forward a request and then
drop the connection before the answer, cut every open connection, or stop carrying
bytes one way. It runs its own event loop on a thread, so sync and async tests can
use it alike."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import List, Optional, Set


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head + body


class Proxy:
    def __init__(self, upstream_port: int, port: Optional[int] = None):
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._server: Optional[asyncio.base_events.Server] = None
        self._writers: Set[asyncio.StreamWriter] = set()
        #: Faults for the next connections, consumed in order: "reset", "503",
        #: "forward_then_drop" (one HTTP request is forwarded, its answer dropped).
        self.faults: List[str] = []
        self.accepted = 0
        self.blackhole_up = False
        self.blackhole_down = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def listen(self) -> "Proxy":
        async def start() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

        self._run(start())
        return self

    def stop_listening(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None

        self._run(stop())

    def drop_all(self) -> None:
        """Cuts every open connection (a reset, no close frame)."""

        async def drop() -> None:
            for w in list(self._writers):
                w.transport.abort()

        self._run(drop())

    def close(self) -> None:
        self.stop_listening()
        self.drop_all()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        fault = self.faults.pop(0) if self.faults else None
        self._writers.add(writer)
        try:
            if fault == "reset":
                writer.transport.abort()
                return
            if fault == "503":
                await _read_request(reader)
                body = b'{"error":{"code":"unavailable","message":"injected by the test proxy"}}'
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
                    b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
                writer.close()
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            self._writers.add(up_writer)
            if fault == "forward_then_drop":
                up_writer.write(await _read_request(reader))
                await up_writer.drain()
                await up_reader.read(1)  # the server answered: it acted on the request
                writer.transport.abort()
                up_writer.close()
                return
            await asyncio.gather(
                self._pipe(reader, up_writer, up=True), self._pipe(up_reader, writer, up=False), return_exceptions=True
            )
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.transport.abort()
        finally:
            self._writers.discard(writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if (self.blackhole_up if up else self.blackhole_down):
                    continue
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
