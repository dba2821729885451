"""``is_recovered``: was a missed inbound call answered later, in either direction?"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right, insort
from operator import itemgetter
from typing import Any

from cdrapi.ingest.derive import DESTINATION, DIRECTION, KEY, RECOVERED, SOURCE, STATUS, TIME

__all__ = ["Recovery"]

_time = itemgetter(TIME)


class Recovery:
    """``is_recovered``: a missed inbound call followed within ``window`` hours by an
    answered call with the same number (an inbound call from it or an outbound call to it).

    Rows pass through :meth:`track` in any order; a missed call is marked when its
    recovering call is seen, before or after it. :meth:`track` returns the keys of rows
    seen in earlier batches that are now recovered (to update in the store); rows of the
    current batch are changed in place. :meth:`seed` preloads recent calls from the store.
    Times are compared as text (``YYYY-MM-DD HH:MM:SS`` sorts as time does).
    """

    def __init__(self, window_hours: int, in_store: bool = True) -> None:
        self.window = window_hours * 3600
        self.in_store = in_store  # whether to look for earlier missed calls in the store
        self._delta = dt.timedelta(seconds=self.window)
        self.missed: dict[str, list[tuple[str, str]]] = {}
        self.answered: dict[str, list[str]] = {}
        self.done: set[str] = set()
        self._latest = ""
        self._tracked = 0
        self._days: dict[tuple[str, int], str] = {}

    def _forget_old(self) -> None:
        """Drop calls more than two windows older than the latest (a long follow)."""
        horizon = self._shift(self._latest, -2)
        self.answered = {
            n: kept
            for n, times in self.answered.items()
            if (kept := [t for t in times if t >= horizon])
        }
        self.missed = {
            n: recent
            for n, calls in self.missed.items()
            if (recent := [c for c in calls if c[0] >= horizon])
        }
        kept_keys = {key for calls in self.missed.values() for _, key in calls}
        self.done &= kept_keys

    def _shift(self, when: str, sign: int) -> str:
        """``when`` moved by ``sign`` windows (whole days: only the date part changes)."""
        if self.window % 86400 == 0:
            key = (when[:10], sign)
            day = self._days.get(key)
            if day is None:
                moved = dt.date.fromisoformat(when[:10]) + sign * self._delta
                day = self._days[key] = moved.isoformat()
            return day + when[10:]
        moved = dt.datetime.fromisoformat(when) + sign * self._delta
        return moved.strftime("%Y-%m-%d %H:%M:%S")

    def track(
        self, rows: list[tuple[Any, ...]], callbacks: list[tuple[str, str, str]] | None = None
    ) -> list[str]:
        """Mark recovered calls among ``rows`` (in place); return earlier rows' keys.

        ``callbacks`` receives (number, window start, time) of each answered call, for
        missed calls stored by earlier runs (see :func:`cdrapi.ingest.batch.commit`).
        """
        if not self.window:
            return []
        if not self.in_store:
            callbacks = None
        missed_of, answered_of, done = self.missed, self.answered, self.done
        here: dict[str, int] = {}
        found: list[str] = []
        for i, row in enumerate(rows):
            direction = row[DIRECTION]
            if row[STATUS] == "ANSWERED":
                number = row[SOURCE] if direction == "IN" else row[DESTINATION]
                if not number or direction == "INTERNAL":
                    continue
                when = row[TIME]
                times = answered_of.get(number)
                if times is None:
                    answered_of[number] = [when]
                elif when >= times[-1]:
                    times.append(when)
                else:
                    insort(times, when)
                missed = missed_of.get(number)
                if callbacks is not None:
                    callbacks.append((number, self._shift(when, -1), when))
                if missed:
                    lo = bisect_left(missed, (self._shift(when, -1), ""))
                    for _, key in missed[lo : bisect_left(missed, (when, ""))]:
                        if key not in done:
                            done.add(key)
                            found.append(key)
            elif direction == "IN" and row[SOURCE]:
                key, when, number = row[KEY], row[TIME], row[SOURCE]
                if row[RECOVERED] == 0:
                    here[key] = i
                if key in done:
                    continue
                missed = missed_of.get(number)
                if missed is None:
                    missed_of[number] = [(when, key)]
                elif (when, key) >= missed[-1]:
                    missed.append((when, key))
                else:
                    insort(missed, (when, key))
                times = answered_of.get(number)
                if times and times[-1] > when:
                    limit = self._shift(when, 1)
                    if bisect_right(times, when) < bisect_right(times, limit):
                        done.add(key)
                        found.append(key)
        if rows:
            self._latest = max(self._latest, max(map(_time, rows)))
            self._tracked += len(rows)
            if self._tracked > 500_000:
                self._tracked = 0
                self._forget_old()
        earlier = []
        for key in found:
            i = here.get(key, -1)
            if i < 0:
                earlier.append(key)
            else:
                rows[i] = (*rows[i][:RECOVERED], 1, *rows[i][RECOVERED + 1 :])
        return earlier
