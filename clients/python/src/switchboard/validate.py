"""Checks made before anything is sent, with the server's own rules (PROTOCOL.md,
docs/protocol.md, docs/agents.md), so a bad value fails here, named, instead of as a
round trip (or, on the WebSocket, as a close 1009 for an oversized frame)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import InvalidInput, InvalidTopic, MessageTooLarge

MAX_TOPIC_LEN = 128
MAX_EVENT_LEN = 128
#: The server's default `--max-message-bytes`: a WebSocket message or an API body.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
#: The server's default `--max-report-bytes`: an agent message or a report batch.
DEFAULT_MAX_REPORT_BYTES = 1024 * 1024

_TOPIC_CHARS = re.compile(r"[a-z0-9_.:\-]")
_AGENT_NAME = re.compile(r"[a-z0-9_.\-]{1,64}")
_RUN_ID = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")
_STAGE_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
SERVER_OWNED = ("metrics", "coordinator", "agents")


def topic(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidTopic(f"topic must be a string, not {type(name).__name__} {name!r}", name)
    if not name:
        raise InvalidTopic("topic name is empty", name)
    if len(name.encode()) > MAX_TOPIC_LEN:
        raise InvalidTopic(f"topic {name[:40]!r}... is {len(name.encode())} bytes long; at most 128 are allowed", name)
    for ch in name:
        if not _TOPIC_CHARS.fullmatch(ch):
            raise InvalidTopic(
                f"topic {name!r} has the character {ch!r}; only a-z, 0-9, '_', '.', ':' and '-' are allowed", name
            )
    return name


def publishable_topic(name: Any) -> str:
    topic(name)
    if name in SERVER_OWNED or name.startswith(("workflow:", "agent:")):
        raise InvalidTopic(
            f"topic {name!r} is written only by the server (workflow:*, coordinator, agents, agent:*, metrics)", name
        )
    return name


def event_name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_EVENT_LEN:
        raise InvalidInput(f"event name {name!r} must be a string of 1 to 128 characters", name)
    bad = next((c for c in name if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0), None)
    if bad is not None:
        raise InvalidInput(f"event name {name!r} has the control character {bad!r}", name)
    return name


def to_json(value: Any, what: str) -> str:
    """Compact JSON of ``value``; a value JSON cannot carry (NaN, a set) is named."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{what} is not JSON-serializable: {e}", value) from None


def size(text: str, limit: int, what: str) -> str:
    n = len(text.encode())
    if n > limit:
        raise MessageTooLarge(f"{what} is {n} bytes; the server takes at most {limit}", n)
    return text


def agent_name(name: Any, what: str = "agent name") -> str:
    if not isinstance(name, str) or not _AGENT_NAME.fullmatch(name) or name == "local":
        raise InvalidInput(f"{what} {name!r} must be 1-64 of a-z, 0-9, '_', '.', '-' (and not \"local\")", name)
    return name


def run_id(value: Any) -> str:
    if not isinstance(value, str) or not _RUN_ID.fullmatch(value):
        raise InvalidInput(f"run id {value!r} must be 1-64 of a-z, 0-9, '_', '.', '-', starting with a letter or digit", value)
    return value


def stage_id(value: Any) -> str:
    if not isinstance(value, str) or not _STAGE_ID.fullmatch(value):
        raise InvalidInput(f"stage id {value!r} must be 1-64 letters, digits, '_' or '-'", value)
    return value


def artifact_name(name: Any) -> str:
    """A relative path without empty, '.', '..' or hidden components, and without
    whitespace (the `::artifact name kind` line splits on it)."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"artifact name {name!r} must be a non-empty string", name)
    if name.startswith("/") or "\\" in name or "\0" in name or any(c.isspace() for c in name):
        raise InvalidInput(f"artifact name {name!r} must be a relative path without backslashes or whitespace", name)
    if any(part in ("", ".", "..") or part.startswith(".") for part in name.split("/")):
        raise InvalidInput(f"artifact name {name!r} may not have empty, '.', '..' or hidden components", name)
    return name


def finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{what} must be a finite number, not {value!r}", value)
    return float(value)


def one_line(text: Any, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be a string, not {type(text).__name__}", text)
    if "\n" in text or "\r" in text:
        raise InvalidInput(f"{what} {text[:60]!r} must be one line (no newline)", text)
    return text
