"""The values the client hands out: events, the resume marker, stage definitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

#: Workflow states after which nothing more happens to a run (until a restart).
FINISHED_STATES = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Event:
    """One event of a topic, exactly as the WebSocket and the history carry it."""

    topic: str
    seq: int
    ts: int
    event: str
    data: Any
    epoch: str

    @classmethod
    def from_message(cls, msg: Dict[str, Any], epoch: str) -> "Event":
        return cls(msg["topic"], int(msg["seq"]), int(msg.get("ts", 0)), msg["event"], msg.get("data"), epoch)


@dataclass(frozen=True)
class Reset:
    """The server could not resume the topic from where this subscription was
    (``recovered: false``: history no longer reaches it, or the epoch changed because
    the topic's history started over). Nothing was replayed; events go on live from
    ``seq + 1``. Reload the state over HTTP, and ignore events not above the
    snapshot's seq (return that seq from the ``on_reset`` hook and the subscription
    drops them for you)."""

    topic: str
    seq: int
    epoch: str
    previous_seq: Optional[int]
    previous_epoch: Optional[str]


@dataclass(frozen=True)
class StageKey:
    run: str
    stage: str
    attempt: int

    @classmethod
    def from_message(cls, msg: Dict[str, Any]) -> "StageKey":
        return cls(str(msg["run"]), str(msg["stage"]), int(msg["attempt"]))

    def as_dict(self) -> Dict[str, Any]:
        return {"run": self.run, "stage": self.stage, "attempt": self.attempt}


@dataclass
class Stage:
    """A stage of an external run: its id, and whether a person confirms it after
    it succeeds (the engine then waits in ``waiting_confirmation``)."""

    id: str
    name: Optional[str] = None
    confirm: bool = False
    timeout_s: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"id": self.id}
        if self.name is not None:
            out["name"] = self.name
        if self.confirm:
            out["confirm"] = True
        if self.timeout_s is not None:
            out["timeout_s"] = self.timeout_s
        out.update(self.extra)
        return out
