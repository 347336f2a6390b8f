"""An executor's reports until the server has applied them (docs/agents.md).

Per stage, reports are numbered 1, 2, 3, ... and kept until the server says
``applied``; after a reconnect they are sent again from the ``next_seq`` it asks
for, and the server skips any it had applied already. So a line is neither lost when
a connection drops nor applied twice when it is sent again.

Two things beyond that, both for a server that is killed (not stopped):
- the last applied reports are retained a while (``retain_reports``): a server that
  said ``applied`` before its writer committed (older builds; this one says it once
  the report is on disk) may ask again after a crash for reports it had acknowledged;
- a finished stage is remembered ``retain_done_s`` after its end was applied, and
  listed as running when registering, so a server that lost that end asks for it.
If the server asks for a report no longer retained, the rest is renumbered from what
it asks (the lost lines are logged: ``lost``), rather than a stage stuck on a gap.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Tuple

from ..models import StageKey

log = logging.getLogger("switchboard")

#: Reports and bytes sent in one message, at most (the server takes 1 MiB).
BATCH_REPORTS = 256
BATCH_BYTES = 512 * 1024
#: Output lines are gathered into one report up to this size.
COALESCE_BYTES = 16 * 1024

Report = Dict[str, Any]


def report_size(r: Report) -> int:
    return 64 + sum(len(line.encode()) + 4 for line in r.get("lines", ()))


@dataclass
class _Stage:
    next_seq: int = 1
    kept: Deque[Tuple[Report, int]] = field(default_factory=collections.deque)
    recent: Deque[Tuple[Report, int]] = field(default_factory=collections.deque)
    applied_through: int = 0
    sent_up_to: int = 0
    #: The highest seq ever sent, to count what is sent again.
    max_sent: int = 0
    done: bool = False
    done_applied_at: Optional[float] = None
    waiters: List[Tuple[int, "asyncio.Future[None]"]] = field(default_factory=list)
    error: Optional[BaseException] = None


class Outbox:
    def __init__(self, limit_bytes: int = 64 * 1024 * 1024, retain_reports: int = 1024, retain_done_s: float = 30.0):
        self._stages: Dict[StageKey, _Stage] = {}
        self._bytes = 0
        self.limit_bytes = limit_bytes
        self.retain_reports = retain_reports
        self.retain_done_s = retain_done_s
        #: Set when there is something to send.
        self.ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        #: Reports the server asked for again after they were no longer retained.
        self.lost = 0
        #: Reports acknowledged, then asked for again (a server killed before storing them).
        self.reacknowledged = 0
        #: Reports sent more than once (after a reconnect or a refusal): for tests and logs.
        self.resent = 0

    # -- the stage's side --------------------------------------------------------

    async def wait_room(self) -> None:
        while self._bytes >= self.limit_bytes:
            self._room.clear()
            await self._room.wait()

    def push(self, key: StageKey, kind: Dict[str, Any]) -> int:
        """Keeps a report; returns its seq. Output lines join the last unsent output
        report of the same stream while it is small."""
        st = self._stages.setdefault(key, _Stage())
        if st.error is not None:
            raise st.error
        if st.done:
            raise RuntimeError(f"stage {key.stage!r} of run {key.run!r} has finished: no more reports")
        if kind.get("kind") == "output" and st.kept:
            last, n = st.kept[-1]
            if (
                last["seq"] > st.sent_up_to
                and last["kind"] == "output"
                and last["stream"] == kind["stream"]
                and n < COALESCE_BYTES
            ):
                last["lines"].extend(kind["lines"])
                grown = report_size(last)
                st.kept[-1] = (last, grown)
                self._bytes += grown - n
                self.ready.set()
                return last["seq"]
        report = {**key.as_dict(), "seq": st.next_seq, **kind}
        if kind.get("kind") == "output":
            report["lines"] = list(kind["lines"])
        st.next_seq += 1
        st.done = kind.get("kind") == "finished"
        n = report_size(report)
        st.kept.append((report, n))
        self._bytes += n
        self.ready.set()
        return report["seq"]

    async def wait_applied(self, key: StageKey, seq: int) -> None:
        """Until every report of ``key`` up to ``seq`` is applied (or refused)."""
        st = self._stages.get(key)
        if st is None or st.applied_through >= seq:
            return
        if st.error is not None:
            raise st.error
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        st.waiters.append((seq, fut))
        await fut

    def last_seq(self, key: StageKey) -> int:
        st = self._stages.get(key)
        return st.next_seq - 1 if st else 0

    # -- the connection's side ---------------------------------------------------

    def running(self) -> List[StageKey]:
        """Stages to list in `register`: unfinished ones, and finished ones recently."""
        now = time.monotonic()
        for key, st in list(self._stages.items()):
            if st.done_applied_at is not None and now - st.done_applied_at > self.retain_done_s:
                del self._stages[key]
        return [key for key, st in self._stages.items() if st.error is None]

    def applied(self, key: StageKey, seq: int) -> None:
        st = self._stages.get(key)
        if st is None:
            return
        st.applied_through = max(st.applied_through, min(seq, st.next_seq - 1))
        freed = 0
        while st.kept and st.kept[0][0]["seq"] <= st.applied_through:
            item = st.kept.popleft()
            freed += item[1]
            st.recent.append(item)
        while len(st.recent) > self.retain_reports:
            st.recent.popleft()
        self._free(freed)
        if st.done and not st.kept and st.done_applied_at is None:
            st.done_applied_at = time.monotonic()
        self._wake(st)

    def resume_from(self, key: StageKey, next_seq: int) -> None:
        """The server takes ``key``'s reports from ``next_seq`` on."""
        st = self._stages.get(key)
        if st is None:
            return
        self.applied(key, next_seq - 1)
        if next_seq <= st.applied_through:
            self.reacknowledged += st.applied_through - next_seq + 1
            log.warning(
                "the server asks again for reports %d..%d of stage %r of run %r, which it had acknowledged "
                "(it stopped before storing them): sending them again",
                next_seq, st.applied_through, key.stage, key.run,
            )
        # asked again for reports it had acknowledged (it was killed before storing them)
        while st.recent and st.recent[-1][0]["seq"] >= next_seq:
            item = st.recent.pop()
            st.kept.appendleft(item)
            self._bytes += item[1]
        st.applied_through = min(st.applied_through, next_seq - 1)
        first = st.kept[0][0]["seq"] if st.kept else st.next_seq
        if first > next_seq:
            lost = first - next_seq
            self.lost += lost
            log.error(
                "the server asks for reports of stage %r of run %r from seq %d, but %d of them (applied, then "
                "lost by the server) are no longer kept: going on from seq %d",
                key.stage, key.run, next_seq, lost, next_seq,
            )
            for report, _ in st.kept:
                report["seq"] -= lost
            st.next_seq -= lost
            st.max_sent = next_seq - 1
        if st.done and st.kept:
            st.done_applied_at = None
        st.sent_up_to = next_seq - 1
        self.ready.set()

    def forget(self, key: StageKey, error: BaseException) -> None:
        """The server takes no more reports of ``key``; waiters get ``error``."""
        st = self._stages.pop(key, None)
        if st is None:
            return
        self._free(sum(n for _, n in st.kept))
        st.error = error
        for _, fut in st.waiters:
            if not fut.done():
                fut.set_exception(error)
        # remember the refusal, so the stage's next report raises it
        self._stages[key] = _Stage(error=error, done=True, done_applied_at=time.monotonic(), next_seq=st.next_seq)

    def reconnected(self) -> None:
        """A new connection: everything kept is to be sent again."""
        for st in self._stages.values():
            st.sent_up_to = st.applied_through
        self.ready.set()

    def take_batch(self, only: Optional[StageKey] = None) -> List[Report]:
        """The next reports to send (of one stage with ``only``); marks them sent."""
        out: List[Report] = []
        size = 0
        for key, st in self._stages.items():
            if only is not None and key != only:
                continue
            for report, n in st.kept:
                if report["seq"] <= st.sent_up_to:
                    continue
                if len(out) >= BATCH_REPORTS or (out and size + n > BATCH_BYTES):
                    return out
                size += n
                st.sent_up_to = report["seq"]
                if report["seq"] <= st.max_sent:
                    self.resent += 1
                st.max_sent = max(st.max_sent, report["seq"])
                out.append(report)
        if not out:
            self.ready.clear()
        return out

    def pending(self, key: Optional[StageKey] = None) -> bool:
        """Whether anything (of ``key``) waits to be applied."""
        return any(st.kept for k, st in self._stages.items() if key is None or k == key)

    def _free(self, n: int) -> None:
        self._bytes -= n
        if self._bytes < self.limit_bytes:
            self._room.set()

    @staticmethod
    def _wake(st: _Stage) -> None:
        keep = []
        for seq, fut in st.waiters:
            if seq <= st.applied_through:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((seq, fut))
        st.waiters = keep
