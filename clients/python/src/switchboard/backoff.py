"""Exponential backoff with full jitter (PROTOCOL.md section 6: first retry about
1 s, capped at 30 s): each delay is uniform in [0, min(cap, initial * 2**attempt)],
so many clients cut off at once do not come back at once."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Backoff:
    initial: float = 1.0
    cap: float = 30.0
    #: Injected in tests to see the bound instead of a random draw.
    rand: Callable[[], float] = field(default=random.random, repr=False)

    def bound(self, attempt: int) -> float:
        """The largest delay of retry number ``attempt`` (0 for the first)."""
        return min(self.cap, self.initial * (2 ** min(attempt, 30)))

    def delay(self, attempt: int) -> float:
        return self.bound(attempt) * self.rand()
