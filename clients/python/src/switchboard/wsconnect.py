"""Dialling a WebSocket door with the retry rules every long-lived connection of this
client shares: backoff with full jitter on what may pass (refused, reset, timeout,
429, 5xx, close 1001/1011/1013...), a fresh token once on 401 or close 1008, and a
typed error for what will not pass (403, 421, a second 1008)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, TypeVar

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import errors
from .auth import TokenSource
from .backoff import Backoff

log = logging.getLogger("switchboard")

#: Largest frame accepted from the server (events are at most a few hundred KiB).
MAX_FRAME_BYTES = 16 * 1024 * 1024

T = TypeVar("T")


class Retry(Exception):
    """Raised by a handshake step: dial again after the backoff."""


def close_code(exc: ConnectionClosed) -> Optional[int]:
    return exc.rcvd.code if exc.rcvd is not None else None


def close_reason(exc: ConnectionClosed) -> str:
    return exc.rcvd.reason if exc.rcvd is not None else "no close frame"


def _status_error(exc: InvalidStatus) -> errors.SwitchboardError:
    resp = exc.response
    text = resp.body.decode("utf-8", "replace") if resp.body else ""
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = None
    return errors.from_http(resp.status_code, body, text, None)


async def dial(
    url_for: Callable[[Optional[str]], str],
    tokens: TokenSource,
    backoff: Backoff,
    handshake: Callable[[ClientConnection], Awaitable[T]],
    *,
    bearer: bool = False,
    open_timeout: float = 10.0,
    max_attempts: Optional[int] = None,
    what: str = "connect",
    policy_refused: bool = False,
) -> T:
    """Connects and runs ``handshake`` on the new connection until it succeeds.

    ``url_for(token)`` builds the URL (the token in the query), or with ``bearer``
    the token goes in an ``Authorization`` header. ``policy_refused`` says the last
    connection was closed with 1008 already: the token is refreshed first.
    """
    refreshed = False
    attempt = 0
    if policy_refused:
        if not tokens.refreshable:
            raise errors.ConnectionRefusedByPolicy(f"{what}: the server closed the connection with 1008 (policy)")
        await tokens.refresh()
        refreshed = True
    while True:
        token = await tokens.get()
        headers = {"authorization": f"Bearer {token}"} if bearer and token else None
        refuse_1008: Optional[str] = None
        ws: Optional[ClientConnection] = None
        try:
            ws = await connect(
                url_for(None if bearer else token),
                additional_headers=headers,
                open_timeout=open_timeout,
                max_size=MAX_FRAME_BYTES,
                compression=None,
            )
            return await asyncio.wait_for(handshake(ws), open_timeout)
        except ConnectionClosed as exc:
            if close_code(exc) == 1008:
                refuse_1008 = close_reason(exc)
            else:
                log.info("%s: closed during the handshake (%s %s)", what, close_code(exc), close_reason(exc))
        except InvalidStatus as exc:
            err = _status_error(exc)
            status = exc.response.status_code
            if status == 401:
                refuse_1008 = err.message
            elif status not in (429, 502, 503, 504) and status < 500:
                raise err from None
            else:
                log.info("%s: %s", what, err)
        except Retry as exc:
            log.info("%s: %s", what, exc)
        except (OSError, asyncio.TimeoutError, InvalidHandshake, websockets.exceptions.InvalidURI) as exc:
            if isinstance(exc, websockets.exceptions.InvalidURI):
                raise errors.InvalidInput(f"{what}: bad server URL: {exc}") from None
            log.info("%s: cannot connect: %r", what, exc)
        except BaseException:
            if ws is not None:
                await ws.close()
            raise
        if ws is not None:
            await ws.close()
        if refuse_1008 is not None:
            if refreshed or not tokens.refreshable:
                raise errors.ConnectionRefusedByPolicy(
                    f"{what}: refused by the server: {refuse_1008 or 'close 1008 (policy)'}",
                    code="unauthorized" if "unauthor" in refuse_1008.lower() or "token" in refuse_1008.lower() else "policy",
                )
            refreshed = True
            await tokens.refresh()
            continue
        if max_attempts is not None and attempt + 1 >= max_attempts:
            raise errors.ConnectionFailed(f"{what}: gave up after {attempt + 1} attempts")
        delay = backoff.delay(attempt)
        attempt += 1
        await asyncio.sleep(delay)


async def recv_json(ws: ClientConnection, timeout: Optional[float] = None) -> Dict[str, Any]:
    """The next text frame as a JSON object (a frame that is not one is skipped)."""
    while True:
        raw = await (asyncio.wait_for(ws.recv(), timeout) if timeout else ws.recv())
        if isinstance(raw, bytes):
            continue
        try:
            msg = json.loads(raw)
        except ValueError:
            log.warning("the server sent a frame that is not JSON: %.200s", raw)
            continue
        if isinstance(msg, dict):
            return msg
