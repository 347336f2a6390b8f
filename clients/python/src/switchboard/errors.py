"""Every failure the client raises: one class per protocol error code, so callers
catch what they can handle (``except Conflict``) and read ``code``, ``message`` and,
for WebSocket errors, ``original_message`` (the message the server echoes back)."""

from __future__ import annotations

from typing import Any, Optional


class SwitchboardError(Exception):
    """Base of every error this client raises.

    ``code`` is the protocol's error code (``bad_request``, ``forbidden``, ...), or
    the HTTP-only ones (``unauthorized``, ``payload_too_large``, ...); ``message`` is
    the server's text; ``status`` the HTTP status when there was one; ``retryable``
    whether sending the same thing later may succeed.
    """

    code: str = "error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        retryable: Optional[bool] = None,
        original_message: Any = None,
        retry_after: Optional[float] = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.status = status
        self.original_message = original_message
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        where = f"HTTP {self.status} " if self.status else ""
        return f"{where}{self.code}: {self.message}"


class BadRequest(SwitchboardError):
    code = "bad_request"


class BadJson(BadRequest):
    code = "bad_json"


class UnknownType(BadRequest):
    code = "unknown_type"


class InvalidInput(BadRequest, ValueError):
    """Refused by the client before anything was sent; ``value`` is what was wrong."""

    def __init__(self, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.value = value


class InvalidTopic(InvalidInput):
    pass


class MessageTooLarge(InvalidInput):
    code = "payload_too_large"


class Unauthorized(SwitchboardError):
    code = "unauthorized"


class Forbidden(SwitchboardError):
    code = "forbidden"


class NotFound(SwitchboardError):
    code = "not_found"


class Conflict(SwitchboardError):
    """``expected`` is the report seq the server waits for, on a refused gap."""

    code = "conflict"

    @property
    def expected(self) -> Optional[int]:
        detail = (self.body or {}).get("error", {}) if isinstance(self.body, dict) else {}
        value = detail.get("expected")
        return int(value) if isinstance(value, int) else None


class RateLimited(SwitchboardError):
    code = "rate_limited"
    retryable = True


class TooManySubscriptions(SwitchboardError):
    code = "too_many_subscriptions"


class AgentOffline(SwitchboardError):
    code = "agent_offline"
    retryable = True


class PayloadTooLarge(SwitchboardError):
    code = "payload_too_large"


class ServerError(SwitchboardError):
    code = "internal"
    retryable = True


class ConnectionFailed(SwitchboardError):
    """The server could not be reached (after the retries allowed)."""

    code = "connection_failed"
    retryable = True


class DeliveryUnknown(ConnectionFailed):
    """A request that is not safe to repeat (a publish) was sent, but no answer came
    back: it may or may not have been applied, so it was not retried."""

    code = "delivery_unknown"
    retryable = False


class ConnectionRefusedByPolicy(SwitchboardError):
    """The WebSocket was closed with 1008 (unauthorized, or repeated abuse), even
    after asking the token callback for a fresh token once."""

    code = "policy"


class RunEnded(SwitchboardError):
    """The run ended (``state``: completed, failed, cancelled) while waiting on it."""

    code = "run_ended"

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


class StageCancelled(SwitchboardError):
    """The operator cancelled the stage (raised by ``Stage.checkpoint()``)."""

    code = "cancelled"


class StageRefused(SwitchboardError):
    """The server no longer takes reports for the stage (it ended, or it is someone
    else's); what was not applied is dropped."""

    code = "conflict"


_BY_CODE = {
    cls.code: cls
    for cls in (
        BadRequest,
        BadJson,
        UnknownType,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        RateLimited,
        TooManySubscriptions,
        AgentOffline,
        PayloadTooLarge,
        ServerError,
    )
}

_BY_STATUS = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: RateLimited,
}


def error_class(code: Optional[str], status: Optional[int] = None) -> type:
    if code in _BY_CODE:
        return _BY_CODE[code]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status is not None and status >= 500:
        return ServerError
    return SwitchboardError


def from_ws_error(msg: dict) -> SwitchboardError:
    """The ``error`` message of the WebSocket as an exception."""
    code = msg.get("code")
    cls = error_class(code)
    return cls(
        msg.get("message", ""),
        code=code,
        retryable=bool(msg.get("retryable", cls.retryable)),
        original_message=msg.get("original_message"),
        body=msg,
    )


def from_http(status: int, body: Any, text: str, retry_after: Optional[float]) -> SwitchboardError:
    """An HTTP error response (``{"error": {"code", "message"}}``) as an exception."""
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        code, message = detail.get("code"), str(detail.get("message", ""))
    else:
        code, message = None, text[:500] or f"HTTP {status}"
    cls = error_class(code, status)
    return cls(message, code=code or cls.code, status=status, retry_after=retry_after, body=body)
