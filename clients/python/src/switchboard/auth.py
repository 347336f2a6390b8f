"""The access token: a string, or a callback (plain or async) that returns one. The
callback is asked at the first use and again when the server says the token is no
longer good (HTTP 401, WebSocket close 1008), once per such refusal; a second
refusal in a row is raised, so a bad callback cannot loop."""

from __future__ import annotations

import inspect
from typing import Awaitable, Callable, Optional, Union

TokenCallback = Callable[[], Union[str, None, Awaitable[Optional[str]]]]
TokenLike = Union[str, TokenCallback, None]


class TokenSource:
    def __init__(self, token: TokenLike) -> None:
        self._fixed = token if isinstance(token, str) or token is None else None
        self._callback = None if isinstance(token, str) or token is None else token
        self._current: Optional[str] = self._fixed

    @property
    def refreshable(self) -> bool:
        return self._callback is not None

    async def get(self) -> Optional[str]:
        if self._current is None and self._callback is not None:
            await self.refresh()
        return self._current

    def get_sync(self) -> Optional[str]:
        if self._current is None and self._callback is not None:
            self.refresh_sync()
        return self._current

    async def refresh(self) -> Optional[str]:
        if self._callback is None:
            return self._current
        value = self._callback()
        if inspect.isawaitable(value):
            value = await value
        self._current = value
        return value

    def refresh_sync(self) -> Optional[str]:
        if self._callback is None:
            return self._current
        value = self._callback()
        if inspect.isawaitable(value):
            raise TypeError("an async token callback needs the asyncio client (AsyncClient)")
        self._current = value
        return value
