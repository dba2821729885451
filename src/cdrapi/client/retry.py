"""When and how long to wait before trying a request again.

Retried: transport errors (refused, dropped, timed out), 5xx and 429; never any other 4xx,
which would fail the same way again. The wait before retry ``n`` (0-based) is drawn
uniformly from ``[0, min(max_backoff, backoff * 2**n)]`` ("full jitter", so many clients
failing together do not retry together), except when the server says how long in
``Retry-After``: then that long (capped at ``max_retry_after``). Requests to /api/cdr only
read, so repeating one is always safe.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from cdrapi.client.errors import APIError, ClientError

__all__ = ["Retry", "parse_retry_after"]

log = logging.getLogger("cdrapi.client")

T = TypeVar("T")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry policy: up to ``attempts`` tries of one request in all."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("waits cannot be negative")

    def delay(self, retry: int, error: ClientError) -> float:
        """Seconds to wait before retry number ``retry`` (0-based) after ``error``."""
        if isinstance(error, APIError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        cap = min(self.max_backoff, self.backoff * 2.0**retry)
        return random.uniform(0.0, cap)

    def _next_wait(self, retry: int, error: ClientError) -> float:
        """The wait before the next try, or re-raise ``error`` when there is none."""
        if not error.retryable or retry + 1 >= self.attempts:
            raise error
        wait = self.delay(retry, error)
        log.warning("retrying in %.1fs (%d/%d): %s", wait, retry + 1, self.attempts - 1, error)
        return wait

    def call(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it succeeds or fails in a way not worth retrying."""
        retry = 0
        while True:
            try:
                return attempt()
            except ClientError as error:
                time.sleep(self._next_wait(retry, error))
                retry += 1

    async def acall(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """:meth:`call` for coroutines; waits without blocking the event loop."""
        retry = 0
        while True:
            try:
                return await attempt()
            except ClientError as error:
                await asyncio.sleep(self._next_wait(retry, error))
                retry += 1
