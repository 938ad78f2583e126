"""Per-client rate limit: a token bucket (``rate`` requests per second, up to ``burst`` at once)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """``check(key, rate, burst)`` takes one token from ``key``'s bucket: None when the call may go on, else
    the whole seconds to wait before the next call would be allowed (for ``Retry-After``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def check(self, key: str, rate: float, burst: int) -> int | None:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
