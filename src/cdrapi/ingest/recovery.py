"""``is_recovered``: was a missed inbound call answered later, in either direction?

A *call* is every CDR leg of one ``linkedid``: a ring group or a queue writes one leg per
phone rung, all with the caller's ``linkedid``. The rules, for calls not legs:

- A leg *answers* its call when its disposition is ``ANSWERED`` and someone took it: it
  has a destination channel, or the record has no channels at all (exports without
  them). A leg answered by the PBX itself (``Queue``, ``VoiceMail``, an IVR: ``ANSWERED``
  with no destination channel) does not: a caller who left the queue or a voicemail was
  not answered, and queue_log says such a call was abandoned (see below).
- A call is *missed* when no leg answered it. Its legs that rang unanswered (inbound, not
  ``ANSWERED``: :mod:`cdrapi.ingest.derive` gives them ``is_recovered`` 0) stay 0 until
  an answered call with the number (an inbound call from it, an outbound call to it)
  starts within ``window`` hours after the leg: then 1.
- The legs of an answered call that rang unanswered are not missed calls: their
  ``is_recovered`` is NULL, and their ``call_codes`` read ``in answered elsewhere`` (or
  ``queue answered elsewhere``) instead of ``in no answer``, ``in busy``... (see
  :data:`ELSEWHERE`), so that counting missed calls by ``call_codes`` gives the same
  calls as counting them by ``is_recovered``. Each leg keeps its own ``call_status``.
  What queue_log says of a call (``queue abandoned``, ``queue exit key 1``...) is copied
  onto its legs after this and wins: it only says ``abandoned``/``timeout`` of calls that
  left a queue unanswered, which are missed calls here too.
- An answered call recovers the number's earlier missed calls (each leg is marked once:
  a second answering leg of the call finds nothing left to mark), never the legs of its
  own call. A leg without a linkedid is a call of its own.

Legs come in any order. :meth:`Recovery.track` sees every batch of a run, in order:
rows of the current batch are changed in place; keys of rows stored by earlier batches
of the run come back to be updated in the store (recovered: the return value, no longer
missed: ``cleared``). Legs stored by earlier runs are looked up in the store when the
batch is committed (:func:`cdrapi.ingest.batch.commit`): ``callbacks`` for missed calls
of the number, and the linkedids of the batch's legs (``Batch.look_in_store``). An
import into an empty store has nothing stored before it (``in_store`` False).

Times are compared as text (``YYYY-MM-DD HH:MM:SS`` sorts as time does).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right, insort
from typing import TYPE_CHECKING, Any

from cdrapi.ingest.row import (
    CALL_CODES,
    CHANNEL,
    DESTINATION,
    DIRECTION,
    DSTCHANNEL,
    KEY,
    LINKEDID,
    RECOVERED,
    SOURCE,
    STATUS,
    TIME,
)

if TYPE_CHECKING:
    from cdrapi.ingest.batch import Batch

__all__ = ["ELSEWHERE", "Recovery"]

#: ``call_codes`` of an unanswered leg -> what it reads when another leg answered the call.
ELSEWHERE: dict[str, str] = {
    f"{word} {outcome}": f"{word} answered elsewhere"
    for word in ("in", "queue")
    for outcome in ("no answer", "busy", "failed", "congestion")
}

#: Rows tracked between two prunings of old calls (:meth:`Recovery._forget_old`).
PRUNE_EVERY = 500_000
#: Linkedids of answered calls, and of calls with unanswered legs, kept at least (the
#: legs of one call are written within minutes, as the call ends).
KEEP_CALLS = 200_000


def _not_missed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` as a leg of an answered call: ``is_recovered`` NULL, ``call_codes`` said so."""
    codes = row[CALL_CODES]
    return (
        *row[:CALL_CODES],
        ELSEWHERE.get(codes, codes),
        *row[CALL_CODES + 1 : RECOVERED],
        None,
        *row[RECOVERED + 1 :],
    )


class Recovery:
    """The recovery state of one run (see the module's docstring).

    ``numbers`` holds, per number, the times of its answered calls and the (time, key)
    of its missed legs. ``pending`` holds, per linkedid, the key (a list of keys)
    of unanswered legs of calls not known to be answered; ``answered_calls`` (and the
    generation before it) the linkedids of answered calls: at least :data:`KEEP_CALLS`
    of the latest of each. The rows of a batch only collect linkedids (a set add per
    answered leg, a pair per unanswered one); calls are grouped once a batch, with set
    operations (:meth:`_calls`): a few percent of :meth:`track`'s cost.
    """

    def __init__(self, window_hours: int, in_store: bool = True) -> None:
        self.window = window_hours * 3600
        self.in_store = in_store  # whether to look for earlier missed calls in the store
        self._delta = dt.timedelta(seconds=self.window)
        # number -> [times of its answered calls, (time, key) of its missed legs], both
        # sorted: one look-up a row finds both (two dicts took two, each a cache miss)
        self.numbers: dict[str, list[list[Any]]] = {}
        # (time, key) of missed legs taken out of the number's once recovered: an answered
        # call need not look at them again, but they are kept in ``done`` as long as the
        # legs still missed of their time are (see _forget_old)
        self._recovered: list[tuple[str, str]] = []
        self.done: set[str] = set()
        self.pending: dict[str, Any] = {}
        self.answered_calls: set[str] = set()
        self._older_answered: set[str] = set()
        self._latest = ""
        self._tracked = 0
        self._days: dict[tuple[str, int], str] = {}
        #: The linkedid step (:meth:`group`) is left to the writing process: set before a
        #: producer process is forked (see :func:`cdrapi.ingest.files.run_files`).
        self.calls_in_writer = False

    def _forget_old(self) -> None:
        """Drop calls more than two windows older than the latest (a long follow)."""
        horizon = self._shift(self._latest, -2)
        numbers = {}
        for number, (times, calls) in self.numbers.items():
            kept = [t for t in times if t >= horizon]
            recent = [c for c in calls if c[0] >= horizon]
            if kept or recent:
                numbers[number] = [kept, recent]
        self.numbers = numbers
        self._recovered = [leg for leg in self._recovered if leg[0] >= horizon]
        kept_keys = {key for _, calls in numbers.values() for _, key in calls}
        kept_keys.update(key for _, key in self._recovered)
        self.done &= kept_keys

    def _calls(self, answered: set[str], legs: list[tuple[str, str]]) -> list[str]:
        """Keys of unanswered legs (this batch's ``legs``, earlier ones pending) of calls
        that another leg answered (in this batch: ``answered``, or earlier)."""
        answered.discard("")  # no linkedid: each leg is a call of its own
        pending, unmissed = self.pending, []
        if pending and answered:
            for linked in answered & pending.keys():
                legs_of = pending.pop(linked)
                if type(legs_of) is str:
                    unmissed.append(legs_of)
                else:
                    unmissed += legs_of
        if legs:
            latest, older = self.answered_calls, self._older_answered
            for linked, key in legs:
                if not linked:
                    continue
                if linked in answered or linked in latest or linked in older:
                    unmissed.append(key)
                    continue
                legs_of = pending.get(linked)
                if legs_of is None:
                    pending[linked] = key
                elif type(legs_of) is str:
                    pending[linked] = [legs_of, key]
                else:
                    legs_of.append(key)
            if len(pending) > 2 * KEEP_CALLS:  # dicts keep insertion order: oldest first
                self.pending = dict(list(pending.items())[-KEEP_CALLS:])
        if answered:
            self.answered_calls |= answered
            if len(self.answered_calls) > KEEP_CALLS:
                self._older_answered, self.answered_calls = self.answered_calls, set()
        return unmissed

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

    def track_batch(self, batch: Batch) -> None:
        """:meth:`track` a batch's rows: fills its ``recovered``, ``cleared``,
        ``callbacks`` and ``look_in_store``; with :attr:`calls_in_writer`, only the
        numbers' part (the writer runs :meth:`group_batch`)."""
        batch.recovered = self.numbers_of(batch.rows, batch.callbacks)
        if not self.calls_in_writer:
            self.group(batch.rows, batch.recovered, batch.cleared)
        batch.look_in_store = self.in_store and bool(batch.rows)

    def group_batch(self, batch: Batch) -> None:
        """:meth:`group` a batch the parsing process tracked with :attr:`calls_in_writer`."""
        self.group(batch.rows, batch.recovered, batch.cleared)

    def track(
        self,
        rows: list[tuple[Any, ...]],
        callbacks: list[tuple[str, str, str]] | None = None,
        cleared: list[str] | None = None,
    ) -> list[str]:
        """Mark recovered and not-missed legs among ``rows`` (in place); return the keys
        of earlier rows now recovered.

        ``cleared`` receives the keys of earlier rows found to be legs of an answered
        call (``is_recovered`` NULL, ``call_codes`` as :data:`ELSEWHERE`). ``callbacks``
        receives (number, window start, time) of each answered call, for missed calls
        stored by earlier runs (see :func:`cdrapi.ingest.batch.commit`). The two steps,
        in turn: :meth:`numbers_of` and :meth:`group`.
        """
        earlier = self.numbers_of(rows, callbacks)
        self.group(rows, earlier, cleared)
        return earlier

    def numbers_of(
        self, rows: list[tuple[Any, ...]], callbacks: list[tuple[str, str, str]] | None = None
    ) -> list[str]:
        """Step *numbers*: the missed legs among ``rows`` recovered by answered calls
        with their number in the window (marked 1 in place), and those of earlier rows
        (the keys returned); ``callbacks`` as in :meth:`track`."""
        if not self.in_store:
            callbacks = None
        window = self.window
        numbers, done = self.numbers, self.done
        here: dict[str, int] = {}
        found: list[str] = []
        recovered_legs = self._recovered
        for i, row in enumerate(rows):
            if row[STATUS] == "ANSWERED":
                if not row[DSTCHANNEL] and row[CHANNEL]:
                    continue  # answered by the PBX (a queue, voicemail, an IVR), not a person
                direction = row[DIRECTION]
                if not window or direction == "INTERNAL":
                    continue
                number = row[SOURCE] if direction == "IN" else row[DESTINATION]
                if not number:
                    continue
                when = row[TIME]
                if callbacks is not None:
                    callbacks.append((number, self._shift(when, -1), when))
                entry = numbers.get(number)
                if entry is None:
                    numbers[number] = [[when], []]
                    continue
                times, missed = entry
                if not times or when >= times[-1]:
                    times.append(when)
                else:
                    insort(times, when)
                if missed:
                    lo = bisect_left(missed, (self._shift(when, -1), ""))
                    hi = bisect_left(missed, (when, ""), lo)
                    if lo < hi:
                        legs = missed[lo:hi]
                        for _, key in legs:
                            if key not in done:
                                done.add(key)
                                found.append(key)
                        # every one of them is done now: out of the number's list, so that
                        # its next answered calls do not walk them again (a number's
                        # missed legs would be walked once per answer in their window)
                        del missed[lo:hi]
                        recovered_legs.extend(legs)
            elif row[RECOVERED] == 0:  # an unanswered inbound leg
                key = row[KEY]
                here[key] = i
                number = row[SOURCE]
                if not window or not number or key in done:
                    continue
                when = row[TIME]
                entry = numbers.get(number)
                if entry is None:
                    numbers[number] = [[], [(when, key)]]
                    continue
                times, missed = entry
                if not missed or (when, key) >= missed[-1]:
                    missed.append((when, key))
                else:
                    insort(missed, (when, key))
                if times and times[-1] > when:
                    limit = self._shift(when, 1)
                    if bisect_right(times, when) < bisect_right(times, limit):
                        done.add(key)
                        found.append(key)
        if rows:
            # the first and last rows' times, not all of them (4% of track's time): at
            # most the latest, so _forget_old keeps more, never less, whatever the order
            self._latest = max(self._latest, rows[0][TIME], rows[-1][TIME])
            self._tracked += len(rows)
            if self._tracked > PRUNE_EVERY:
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

    def group(
        self, rows: list[tuple[Any, ...]], earlier: list[str], cleared: list[str] | None
    ) -> None:
        """Step *calls*: the unanswered legs (among ``rows``, or pending from earlier
        batches) of calls another leg answered are no missed calls: in place, or their
        keys onto ``cleared``; none of them stays in ``earlier`` (recovered).

        Legs recovered by :meth:`numbers_of` come here with ``is_recovered`` 1 and leave
        with NULL: a leg of an answered call is no missed call, recovered or not.
        """
        answered: set[str] = set()
        answer = answered.add
        legs: list[tuple[str, str]] = []  # (linkedid, key) of unanswered legs
        here: dict[str, int] = {}
        for i, row in enumerate(rows):
            if row[STATUS] == "ANSWERED":
                if row[DSTCHANNEL] or not row[CHANNEL]:  # answered by a person
                    answer(row[LINKEDID])
            elif row[RECOVERED] is not None:  # an unanswered inbound leg (0, or 1 now)
                key = row[KEY]
                here[key] = i
                legs.append((row[LINKEDID], key))
        unmissed = self._calls(answered, legs)
        if not unmissed:
            return
        if not self.calls_in_writer:  # (the writer's copy of ``done`` is never read)
            self.done.update(unmissed)
        gone = set(unmissed)
        earlier[:] = [key for key in earlier if key not in gone]
        for key in unmissed:
            i = here.get(key, -1)
            if i >= 0:
                rows[i] = _not_missed(rows[i])
            elif cleared is not None:
                cleared.append(key)
