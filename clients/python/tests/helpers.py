"""Small waits and readers shared by the server tests."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, List

from switchboard import AsyncClient, Event


async def until(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_state(sb: AsyncClient, run_id: str, state: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        snap = await sb.get_run(run_id)
        if snap["state"] == state:
            return snap
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is {snap['state']}, not {state}: {snap}")
        await asyncio.sleep(0.05)


def terminal_lines(events: List[Event], stage: str) -> List[str]:
    """The run's terminal for one stage, as lines (output is batched into events)."""
    text = "".join(e.data["output"] for e in events if e.event == "terminal_output" and e.data["stage_id"] == stage)
    return text.splitlines()


def states(events: List[Event]) -> List[str]:
    out: List[str] = []
    for e in events:
        if e.event == "workflow_status" and (not out or out[-1] != e.data["state"]):
            out.append(e.data["state"])
    return out
