"""Token-bucket rate limiting: bursts allowed, then 429 with a Retry-After, refilled over time, per key."""

import pytest

from libs.common.errors import TooManyRequests
from services.auth.ratelimit import RateLimiter


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_429_with_retry_after_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.5, burst=3, clock=clock)
    for _ in range(3):
        limiter.check("login:1.2.3.4")
    with pytest.raises(TooManyRequests) as exc:
        limiter.check("login:1.2.3.4")
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "2"
    limiter.check("login:5.6.7.8")  # other callers are unaffected
    clock.now = 2.0
    limiter.check("login:1.2.3.4")  # one token refilled
    with pytest.raises(TooManyRequests):
        limiter.check("login:1.2.3.4")
