"""How long to wait before retrying: exponential, capped, with jitter so that many exports
throttled at once do not retry in step."""

from __future__ import annotations

import random
from collections.abc import Callable

BASE = 2.0
CAP = 300.0


def backoff(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """ "Equal jitter": between half and all of min(CAP, BASE * 2^attempt) seconds."""
    ceiling = min(CAP, BASE * 2.0**attempt)
    return ceiling / 2 + rng() * ceiling / 2
