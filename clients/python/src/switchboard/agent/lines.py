"""The stage output protocol (README "Write your own stage"): the stdout lines the
server turns into events. Each is built here, from checked values, so a bad value is
refused with its name instead of becoming a line the server shows as plain text."""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional

from .. import validate
from ..errors import InvalidInput

ARTIFACT_KINDS = ("image", "file", "export")
LOG_LEVELS = ("notice", "warning", "error")
_METRIC_NAME = re.compile(r"[^\s=]+")


def _num(x: float) -> str:
    # repr is the shortest text that reads back as the same float (Rust's parse too)
    return repr(float(x))


def progress(fraction: float, message: Optional[str] = None) -> str:
    f = validate.finite(fraction, "progress")
    if not 0.0 <= f <= 1.0:
        raise InvalidInput(f"progress must be between 0 and 1, not {fraction!r}", fraction)
    line = f"::progress {_num(f)}"
    if message:
        line += " " + validate.one_line(message, "progress message").strip()
    return line


def metrics(values: Dict[str, float], step: Optional[int] = None) -> str:
    if not values:
        raise InvalidInput("a metric line needs at least one value", values)
    parts = []
    for name, value in values.items():
        if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name) or name == "step":
            raise InvalidInput(f"metric name {name!r} must be non-empty, without whitespace or '=', and not 'step'", name)
        parts.append(f"{name}={_num(validate.finite(value, f'metric {name!r}'))}")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise InvalidInput(f"metric step must be an int >= 0, not {step!r}", step)
        parts.append(f"step={step}")
    return "::metric " + " ".join(parts)


def artifact(name: str, kind: str = "file") -> str:
    validate.artifact_name(name)
    if kind not in ARTIFACT_KINDS:
        raise InvalidInput(f"artifact kind {kind!r} is not one of {', '.join(ARTIFACT_KINDS)}", kind)
    return f"::artifact {name} {kind}"


def log(level: str, message: str) -> str:
    if level not in LOG_LEVELS:
        raise InvalidInput(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}", level)
    return f"::{level} {validate.one_line(message, level + ' message')}"


def plain(text: str) -> List[str]:
    """Plain text as terminal lines. A line starting with ``::`` would be read as a
    command, so it is refused: send it with ``Stage.write`` if that is meant."""
    if not isinstance(text, str):
        raise InvalidInput(f"log text must be a string, not {type(text).__name__}", text)
    out = text.split("\n") if text else [""]
    if text.endswith("\n"):
        out.pop()
    lines = [line.rstrip("\r") for line in out]
    for line in lines:
        if line.startswith("::"):
            raise InvalidInput(
                f"line {line[:60]!r} starts with '::', which the server reads as a command; "
                "use write() to send a command line as it is",
                line,
            )
    return lines


def raw(text: str) -> List[str]:
    if not isinstance(text, str):
        raise InvalidInput(f"output must be a string, not {type(text).__name__}", text)
    out = text.split("\n")
    if text.endswith("\n"):
        out.pop()
    return [line.rstrip("\r") for line in out]


def check_sizes(lines: Iterable[str], limit: int) -> None:
    for line in lines:
        n = len(line.encode())
        if n > limit:
            raise InvalidInput(f"an output line of {n} bytes is over the limit of {limit} per line", n)
