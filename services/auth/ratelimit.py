"""In-process rate limiting for the login, token and device endpoints (token buckets keyed by caller).

Per process: with N replicas the effective limit is N times higher, which is acceptable for abuse
protection (lockout after failed logins is stored in MongoDB and therefore global). Pure logic.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from libs.common.errors import TooManyRequests

MAX_KEYS = 50_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`rate` requests per second with bursts up to `burst`, per key (e.g. "login:<ip>").

    Args:
        rate: sustained requests per second.
        burst: bucket size.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def check(self, key: str) -> None:
        """Take one token for `key`.

        Raises:
            TooManyRequests: with `Retry-After` (whole seconds) when the bucket is empty.
        """
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[key] = bucket
        if len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1.0:
            wait = max(1, math.ceil((1.0 - bucket.tokens) / self.rate))
            raise TooManyRequests("too many requests; slow down", headers={"Retry-After": str(wait)})
        bucket.tokens -= 1.0
