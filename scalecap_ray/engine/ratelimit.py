"""Request and token rate limits shared by every replica of an API model.

A provider's quota is per account, not per actor: the replicas of one model reserve their
requests from one `RateLimiter` (in a Ray actor when there are several), which answers how
long to wait; the caller sleeps, so the limiter itself never blocks.  Tokens are reserved
from an estimate before a request and settled with the API's own count after it.
"""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """Virtual-time scheduling: each reservation moves the time the next request may start
    (requests) and drains a bucket that refills at the token rate (tokens).  The bucket may
    go into debt; a reservation waits until the debt is paid off."""

    def __init__(self, requests_per_second: float | None, tokens_per_minute: float | None,
                 clock=time.monotonic):
        self.rps, self.tpm, self.clock = requests_per_second, tokens_per_minute, clock
        self._next_request = 0.0
        self._tokens = tokens_per_minute or 0.0  # a full minute's quota to start with
        self._tokens_at = clock()

    def _refill(self, now: float) -> None:
        if self.tpm:
            self._tokens = min(self.tpm, self._tokens + (now - self._tokens_at) * self.tpm / 60)
        self._tokens_at = now

    def reserve(self, tokens: float) -> float:
        """Reserve one request of about `tokens` tokens; the seconds to wait before it."""
        now = self.clock()
        wait = 0.0
        if self.rps:
            start = max(now, self._next_request)
            self._next_request = start + 1.0 / self.rps
            wait = start - now
        if self.tpm:
            self._refill(now)
            self._tokens -= tokens
            if self._tokens < 0:
                wait = max(wait, -self._tokens * 60 / self.tpm)
        return wait

    def settle(self, difference: float) -> None:
        """Correct the last estimate: `difference` = tokens used - tokens reserved."""
        if self.tpm:
            self._refill(self.clock())
            self._tokens -= difference


async def acquire(limiter, tokens: float) -> None:
    """Wait for a reservation from a local limiter or a limiter actor's handle."""
    if limiter is None:
        return
    if isinstance(limiter, RateLimiter):
        wait = limiter.reserve(tokens)
    else:
        wait = await limiter.reserve.remote(tokens)
    if wait > 0:
        await asyncio.sleep(wait)


def settle(limiter, difference: float) -> None:
    if limiter is None or not difference:
        return
    if isinstance(limiter, RateLimiter):
        limiter.settle(difference)
    else:
        limiter.settle.remote(difference)
