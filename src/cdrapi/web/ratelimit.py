"""Failed sign-ins counted per key (a username, a client address), and the wait they earn.

:class:`FailureLimit` allows at most ``failures`` failures of a key within a sliding
``window`` of seconds; once a key has them, :meth:`~FailureLimit.retry_after` says how many
seconds until its oldest one leaves the window. The sign-in form checks it before a
password is even hashed, for the username and the client's address alike, so guessing
one account's password from many addresses, or many accounts' from one, is slowed the
same way, and the answer is the same whether the account exists or not.

The counts live in the memory of one server worker: each worker counts for itself (with
``--workers 4`` an attacker gets at most four times the attempts) and a restart forgets
them. That is enough to turn guessing into days of waiting without a shared store.
Memory is bounded: at most :data:`MAX_KEYS` keys, the oldest dropped first.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["MAX_KEYS", "FailureLimit"]

#: Keys remembered at most (a flood of made-up usernames cannot fill the memory).
MAX_KEYS = 100_000


class FailureLimit:
    """At most ``failures`` failures per key within ``window`` seconds."""

    def __init__(
        self, failures: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.window = window
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._seen.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._seen[key]
        return times

    def retry_after(self, *keys: str) -> int:
        """Whole seconds until every key may fail again (0: an attempt is allowed now)."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.failures:
                wait = max(wait, times[-self.failures] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        """Count one failure for each key."""
        now = self._clock()
        for key in keys:
            times = self._recent(key, now)
            if not times:
                self._seen[key] = times
            times.append(now)
            while len(times) > self.failures:
                times.popleft()  # only the last ``failures`` ever decide the wait
        while len(self._seen) > MAX_KEYS:
            del self._seen[next(iter(self._seen))]

    def forget(self, key: str) -> None:
        """Drop ``key``'s failures (a username's, once its password was given)."""
        self._seen.pop(key, None)
