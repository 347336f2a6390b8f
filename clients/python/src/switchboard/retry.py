"""What is retried, and why it never duplicates.

An HTTP call is either *idempotent* (a GET; a report batch, which the server applies
by its seq once; an artifact PUT, written whole and renamed) or *once-only* (a
publish, a control, starting a run: the server does it again if asked again). An
idempotent call is retried after any transient failure. A once-only call is retried
only when the server surely did not act on it:

- the connection was never made (refused, DNS, connect timeout, no free pooled
  connection): nothing was sent;
- 429 ``rate_limited``: the budget check comes before any handler;
- 503 (``agent_offline``, ``too_many_connections``, a proxy with no upstream): refused
  before acting;
- 500 with the server's own error body, for calls that mark it safe (a publish: the
  hub answers 500 only when its log did not take the event).

Anything else after the request may have reached the server (a read timeout, a
connection reset before the answer, a proxy's 502/504) raises ``DeliveryUnknown``
instead of guessing. A 401 is retried once with a fresh token from the token callback
(authentication comes before any handler too).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import httpx

from . import errors

#: Longest Retry-After honoured; a server asking for more gets an error instead.
MAX_RETRY_AFTER_S = 60.0


@dataclass
class Verdict:
    retry: bool
    error: errors.SwitchboardError
    #: Seconds the server asked to wait (Retry-After), else None: use the backoff.
    delay: Optional[float] = None


def retry_after(headers: Mapping[str, str]) -> Optional[float]:
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def on_exception(exc: httpx.HTTPError, idempotent: bool, what: str) -> Verdict:
    if isinstance(exc, _NOT_SENT):
        err = errors.ConnectionFailed(f"{what}: cannot reach the server: {exc!r}")
        return Verdict(retry=not isinstance(exc, httpx.UnsupportedProtocol), error=err)
    if idempotent:
        return Verdict(retry=True, error=errors.ConnectionFailed(f"{what}: {exc!r}"))
    err = errors.DeliveryUnknown(
        f"{what}: the request was sent but no answer came back ({exc!r}); it may have been applied, "
        "so it was not sent again"
    )
    return Verdict(retry=False, error=err)


def on_status(
    status: int, headers: Mapping[str, str], body: Any, text: str, idempotent: bool, safe_500: bool
) -> Verdict:
    wait = retry_after(headers)
    err = errors.from_http(status, body, text, wait)
    ours = isinstance(body, dict) and isinstance(body.get("error"), dict)
    if wait is not None and wait > MAX_RETRY_AFTER_S:
        return Verdict(retry=False, error=err)
    if status in (429, 503):
        return Verdict(retry=True, error=err, delay=wait)
    if status >= 500:
        if idempotent or (safe_500 and ours and status == 500):
            return Verdict(retry=True, error=err, delay=wait)
        if not ours:
            unknown = errors.DeliveryUnknown(
                f"HTTP {status} from something between the client and the server ({text[:200]!r}): "
                "the request may have been applied, so it was not sent again",
                status=status,
            )
            return Verdict(retry=False, error=unknown)
    return Verdict(retry=False, error=err)
