"""When to try a request again, and for how long: a budget of time, shared by a client's
requests, not a count of tries.

What is retried: no usable answer (connection refused or dropped, timeouts), 429, and 500,
502, 503 and 504 (the ``retryable`` errors of :mod:`cdrapi.client.errors`). Never any other
4xx, which would fail the same way again, nor another 5xx (501, 505...). Requests to
/api/cdr only read, so repeating one is always safe.

How long: ``retry_for`` seconds (60 by default) from the start of the outage, that is, the
first failure after the last success of any request of the same client. The requests in
flight together share that one budget: four requests waiting out a server restart give up
together, ``retry_for`` after its first failure, not four times sooner (a request that
keeps failing while others succeed gives up ``retry_for`` after its own first failure).
No wait runs past the budget: the last try is made when it runs out, and its error is
raised, its message saying how long it was retried. ``retry_for=0`` means no retry;
``math.inf`` means never give up.

How often: the wait before retry ``n`` (0-based) is drawn uniformly from
``[0, min(max_backoff, backoff * 2**n)]`` ("full jitter", so that many clients failing
together do not retry together): 0.5 s doubling up to 10 s by default. When the server
says how long in ``Retry-After`` (more than 0), that long instead, at most
``max_retry_after`` (60 s). As soon as one request gets an answer, the others waiting out a
backoff try again at once: a pull resumes when the server is back, not up to 10 s later.

    Client(url, token, retry=Retry(retry_for=600))   # ride out ten minutes of downtime
    Client(url, token, retry=Retry(retry_for=0))     # fail at the first error
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from cdrapi.client.errors import APIError, ClientError

__all__ = ["Outage", "Retry", "parse_retry_after"]

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


class Outage:
    """One client's view of its server failing: since when, and a signal for when it
    answers again. Shared by the client's requests (see the module docstring).

    The outage lasts from its first failure until a request gets an answer, or until no
    request is left failing in it (all gave up or were cancelled): a later call of the
    client then starts with a full budget.
    """

    def __init__(self) -> None:
        self.since: float | None = None
        """``time.monotonic()`` of the outage's first failure; ``None`` while all is well."""
        self._failing = 0
        self._lock = threading.Lock()
        self._back = threading.Event()
        self._aback = asyncio.Event()

    def join(self, budget: float, error: ClientError) -> None:
        """A request's first failure: count it in (an outage begins if none is on)."""
        with self._lock:
            self._failing += 1
            if self.since is None:
                self.since = time.monotonic()
                self._back, self._aback = threading.Event(), asyncio.Event()
                if budget > 0:
                    log.warning("%s; retrying for up to %s", error, _seconds(budget))

    def leave(self) -> None:
        """A request that failed is done (answered, gave up or cancelled)."""
        with self._lock:
            self._failing -= 1
            if self._failing == 0:
                self.since = None

    def answered(self) -> None:
        """A request got an answer: the outage (if any) is over; waiting requests try again."""
        with self._lock:
            if self.since is None:
                return
            lasted = time.monotonic() - self.since
            self.since = None
            self._back.set()
            self._aback.set()
        log.warning("the server answers again, after %s", _seconds(lasted))

    def began(self, first: float) -> float:
        """When the outage of a request that first failed at ``first`` began."""
        since = self.since
        if since is None:  # ended by an answer to another request; this one still fails
            with self._lock:
                if self.since is None:  # a new outage: its own signal (the old one is set)
                    self.since = time.monotonic()
                    self._back, self._aback = threading.Event(), asyncio.Event()
                since = self.since
        return min(first, since)

    def wait(self, seconds: float, *, early: bool) -> None:
        """Sleep ``seconds``, or less if ``early`` and the server answers meanwhile."""
        if early:
            self._back.wait(seconds)
        else:
            time.sleep(seconds)

    async def await_(self, seconds: float, *, early: bool) -> None:
        """:meth:`wait` without blocking the event loop."""
        if not early:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._aback.wait(), seconds)


def _told(error: ClientError) -> float:
    """How long the server said to wait (``Retry-After``), 0 when it did not say."""
    return (error.retry_after or 0.0) if isinstance(error, APIError) else 0.0


def _seconds(value: float) -> str:
    if math.isinf(value):
        return "ever"
    if value >= 120:
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes}m{seconds:02d}s"
    return f"{value:.1f}s"


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry policy: retry for up to ``retry_for`` seconds of an outage (module docstring)."""

    retry_for: float = 60.0
    backoff: float = 0.5
    max_backoff: float = 10.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        for name in ("retry_for", "backoff", "max_backoff", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")

    def delay(self, retry: int, error: ClientError) -> float:
        """Seconds to wait before retry number ``retry`` (0-based) after ``error``."""
        told = _told(error)
        if told:
            return min(told, self.max_retry_after)
        cap = min(self.max_backoff, self.backoff * 2.0 ** min(retry, 60))  # no overflow
        return random.uniform(0.0, cap)

    def _next_wait(
        self, retry: int, error: ClientError, first: float, outage: Outage
    ) -> tuple[float, bool]:
        """The wait before the next try and whether an answer elsewhere may cut it short,
        or re-raise ``error`` when the budget is spent."""
        began = outage.began(first)
        now = time.monotonic()
        left = began + self.retry_for - now
        if left <= 0:
            if retry:
                error.add_detail(f" (gave up after retrying for {_seconds(now - began)})")
            raise error
        wait = min(self.delay(retry, error), left)
        log.debug("retry %d in %.2fs: %s", retry + 1, wait, error)
        return wait, not _told(error)

    def call(self, attempt: Callable[[], T], outage: Outage | None = None) -> T:
        """Run ``attempt`` until it succeeds, fails in a way not worth retrying, or the
        budget of ``outage`` (the client's; by default this call's own) is spent."""
        outage = outage or Outage()
        retry, first = 0, None
        try:
            while True:
                try:
                    result = attempt()
                except ClientError as error:
                    if not error.retryable:
                        raise
                    if first is None:
                        first = time.monotonic()
                        outage.join(self.retry_for, error)
                    wait, early = self._next_wait(retry, error, first, outage)
                    outage.wait(wait, early=early)
                    retry += 1
                else:
                    outage.answered()
                    return result
        finally:
            if first is not None:
                outage.leave()

    async def acall(self, attempt: Callable[[], Awaitable[T]], outage: Outage | None = None) -> T:
        """:meth:`call` for coroutines; waits without blocking the event loop."""
        outage = outage or Outage()
        retry, first = 0, None
        try:
            while True:
                try:
                    result = await attempt()
                except ClientError as error:
                    if not error.retryable:
                        raise
                    if first is None:
                        first = time.monotonic()
                        outage.join(self.retry_for, error)
                    wait, early = self._next_wait(retry, error, first, outage)
                    await outage.await_(wait, early=early)
                    retry += 1
                else:
                    outage.answered()
                    return result
        finally:
            if first is not None:
                outage.leave()
