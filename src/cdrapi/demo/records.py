"""The demo's records, made day by day from a run's tables.

:func:`records` yields them in time order as tuples of :data:`DEMO_COLUMNS`. Each kind
of event (:func:`_outbound`, :func:`_internal`, :func:`_reception`, :func:`_queued`)
makes its legs with the day's ``emit`` (:func:`_recorder`): the raw CDR a PBX writes
(:data:`cdrapi.ingest.cdr.CDR_FIELDS`), its CEL events and queue_log lines
(:mod:`cdrapi.demo.events`); when the call is complete (``done``), its legs are derived
by ingestion's own code (:mod:`cdrapi.demo.derivation`), and a day's legs marked missed
or recovered as an ingestion batch is. Only what no PBX log holds (CRM ids, comments,
costs, transcriptions) is drawn here. With ``pbx`` given, each call's CDRs, CEL events
and queue_log lines are handed to it too (``cdrapi demo --write-files``).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator
from itertools import count
from operator import itemgetter
from random import Random
from typing import Any, Protocol

from cdrapi.demo.derivation import EXTRA_COLUMNS, Derivation
from cdrapi.demo.events import Cel, Leg, QueueEvent, dial_events, ivr_events, queue_events
from cdrapi.demo.shape import (
    COMMENTS,
    HOLIDAYS,
    INFO,
    LEGS,
    STATUSES,
    TEXTS,
    Tables,
    draw_tables,
)
from cdrapi.ingest.recovery import Recovery
from cdrapi.ingest.row import KEY, RECOVERED, ROW_FIELDS

__all__ = ["DEMO_COLUMNS", "Pbx", "Row", "records"]

Row = tuple[Any, ...]

# Legs (records) by what they are: 0 customer to reception, 1 outbound, 2 internal,
# 3 customer through a queue, 4 customer after a transfer.
CONTEXTS = ("from-pstn", "from-internal", "from-internal", "ext-queues", "from-internal-xfer")
APPS = ("Dial", "Dial", "Dial", "Queue", "Dial")
#: The columns of a record's tuple: the derived row's but ``source_key`` (demo calls are
#: not ingested ones: ``cdrapi ingest`` never matches them), then the queue_log's, the
#: CEL's and what no PBX log holds (:data:`cdrapi.demo.derivation.EXTRA_COLUMNS`).
DEMO_COLUMNS = (*ROW_FIELDS[1:], *EXTRA_COLUMNS)
_TIME = itemgetter(ROW_FIELDS.index("time"))
_EXTRAS = (None, None, 0, None, 0, None, None, None)  # the queue_log's and CEL's, unset

#: Appends one leg to the call being made and returns its uniqueid (see :func:`_recorder`).
Emit = Callable[..., str]


class Pbx(Protocol):
    """Where the PBX's own files of each call go (:mod:`cdrapi.demo.files`)."""

    def call(self, cdrs: list[tuple[str, ...]], cel: list[Cel], log: list[QueueEvent]) -> None:
        """One call's CDRs, CEL events (time order) and queue_log lines."""


def records(seed: int, calls: int, dates: list[dt.date], pbx: Pbx | None = None) -> Iterator[Row]:
    """Yield ``calls`` records over ``dates`` in time order, as tuples of ``DEMO_COLUMNS``.

    The steps: the run's tables (:func:`~cdrapi.demo.shape.draw_tables`), then day by
    day the day's events (:func:`_day`, each making its legs with the day's
    :func:`_recorder`); a day's records are handed out once the next day is made: whether
    its missed calls were recovered depends on the next 24 hours
    (:class:`~cdrapi.ingest.recovery.Recovery` sees each day as a batch), and its legs
    that started after midnight belong to the next day.
    """
    rnd = Random(seed)
    tables = draw_tables(rnd, calls, dates)
    seqs, chans = count(101), count(17)
    derivation, recovery = Derivation(), Recovery(24, in_store=False)
    pending: deque[int] = deque()  # customers who will call back or be called back
    previous: list[Row] | None = None
    for d in range(len(dates) + 1):
        out: list[Row] = []  # this day's records, in the order they were made
        if d < len(dates):
            emit, done = _recorder(tables, rnd, d, out, seqs, chans, derivation, pbx)
            _day(tables, rnd, d, dates[d], emit, done, pending)
        if previous is not None:  # the previous day is complete now that this one exists
            _recover(recovery, previous, out)
            out.extend(_after(previous, tables.prefix[d]))  # legs that started after midnight
            yield from _stored(previous)
        else:
            _recover(recovery, [], out)
        previous = out
    yield from _stored(previous or [])


def _stored(rows: list[Row]) -> Iterator[Row]:
    """The records of derived rows: without their ``source_key``."""
    for row in rows:
        yield row[1:]


def _recover(recovery: Recovery, previous: list[Row], rows: list[Row]) -> None:
    """Track a day's ``rows`` as ingestion tracks a batch (in place), and mark the
    ``previous`` day's legs they recovered or found to be legs of an answered call."""
    cleared: list[str] = []
    found = recovery.track(rows, None, cleared)
    if not found and not cleared:
        return
    where = {row[KEY]: i for i, row in enumerate(previous) if row[RECOVERED] == 0}
    for key in found:
        i = where.get(key)
        if i is not None:
            row = previous[i]
            previous[i] = (*row[:RECOVERED], 1, *row[RECOVERED + 1 :])
    if cleared:
        raise AssertionError("a call's legs are all made the same day")


def _after(rows: list[Row], midnight: str) -> list[Row]:
    """Sort a day's ``rows`` by time, and cut off and return those from ``midnight`` on."""
    rows.sort(key=_TIME)
    cut = bisect_left(rows, midnight, key=_TIME)
    after = rows[cut:]
    del rows[cut:]
    return after


def _day(
    tables: Tables,
    rnd: Random,
    d: int,
    day: dt.date,
    emit: Emit,
    done: Callable[[], None],
    pending: deque[int],
) -> None:
    """Make the events of day ``d`` (``day``) in time order, each call's legs made by
    ``emit`` and derived by ``done``."""
    rand, bits = rnd.random, rnd.getrandbits
    pool = tables.pool
    workday = day.weekday() < 5 and (day.month, day.day) not in HOLIDAYS
    hours = tables.workday_hours if workday else tables.offday_hours
    kinds_of, kinds, left = tables.kinds_of, [], tables.per_day[d]
    while left > 0:
        k = kinds_of[bits(10)]
        k = k if LEGS[k] <= left else 0
        kinds.append(k)
        left -= LEGS[k]
    times = sorted([hours[bits(12)] + int(rand() * 3600) for _ in kinds])
    for k, t in zip(kinds, times, strict=True):
        if k == 5:
            _outbound(tables, rnd, emit, pending, t)
            done()
            continue
        if k == 6:
            _internal(tables, rnd, emit, t)
            done()
            continue
        c = pending.popleft() if pending and rand() < 0.3 else int(rand() * pool)
        ext = f"TCK-{bits(24)}" if rand() < 0.05 else None
        opened = workday and 28800 <= t < 64800
        if k == 4:
            st = _reception(tables, rnd, emit, t, c, ext, opened)
        else:
            st = _queued(tables, rnd, emit, k, t, c, ext, opened)
        done()
        if st and rand() < 0.6:
            pending.append(c)


def _outbound(tables: Tables, rnd: Random, emit: Emit, pending: deque[int], t: int) -> None:
    """An agent calls a customer out, sometimes calling back a missed caller."""
    rand, bits, rings = rnd.random, rnd.getrandbits, tables.rings
    agent = tables.callers[bits(8)]
    c = pending.popleft() if pending and rand() < 0.35 else int(rand() * tables.pool)
    st = tables.out_status[bits(10)]
    ring = (rings[bits(8)], 30 + bits(5), 2 + bits(3), bits(2), bits(2))[st]
    bill = tables.talk[bits(12)] if st == 0 else 0
    ext = f"CRM-{bits(24)}" if rand() < 0.2 else None
    emit(1, t, ring, bill, st, c, agent, tables.trunk_of[bits(4)], None, ext=ext)


def _internal(tables: Tables, rnd: Random, emit: Emit, t: int) -> None:
    """An agent calls another."""
    rand, bits, agents, rings = rnd.random, rnd.getrandbits, tables.agents, tables.rings
    a, b = agents[int(rand() * 40)], agents[int(rand() * 40)]
    b = agents[a[0] % 40] if a is b else b
    st = tables.int_status[bits(10)]
    ring = (rings[bits(8)], 15 + bits(4), 1, 0, 0)[st]
    bill = tables.talk[bits(12)] // 3 if st == 0 else 0
    emit(2, t, ring, bill, st, int(rand() < 0.2), a, b, None)


def _reception(
    tables: Tables, rnd: Random, emit: Emit, t: int, c: int, ext: str | None, opened: bool
) -> int:
    """Customer ``c`` dials reception directly; return the call's status index."""
    rand, bits, rings = rnd.random, rnd.getrandbits, tables.rings
    st = tables.direct_status[bits(10)] if opened else int(rand() > 0.1)
    ring = (rings[bits(8)], 20 + bits(4), bits(2), bits(2), bits(2))[st]
    bill = tables.talk[bits(12)] if st == 0 else 0
    emit(0, t, ring, bill, st, c, tables.agents[bits(1)], None, tables.reception, ext=ext)
    return st


def _queued(
    tables: Tables,
    rnd: Random,
    emit: Emit,
    k: int,
    t: int,
    c: int,
    ext: str | None,
    opened: bool,
) -> int:
    """Customer ``c`` calls through a queue (kind ``k``: 0 plain, 1 after an agent rings
    out, 2-3 transferred blind or attended); return the call's status index."""
    rand, bits, rings, talk = rnd.random, rnd.getrandbits, tables.rings, tables.talk
    route = tables.qroutes[bits(6)]
    members = route[4]
    ivr = tables.ivrs[bits(8)] if route[5] else 0
    st = 0 if k else tables.in_status[bits(10)] if opened else int(rand() > 0.08)
    agent: Any = members[int(rand() * len(members))] if st == 0 else None
    hold = tables.waits[bits(10)] if st == 0 else tables.abandons[bits(10)] if st == 1 else 0
    linked, seqno, xfer, other = None, 1, None, agent
    if k == 1:
        rang = members[int(rand() * len(members))]
        linked = emit(3, t, ivr + hold + 15, 0, 1, c, rang, None, route, hold, ivr)
        t, ivr, hold, seqno = t + ivr + hold + 15, 0, 0, 2
    elif k >= 2:
        other = tables.agents[(agent[0] + bits(3)) % 40]
        xfer = ("blind", "attended")[k - 2]
    ring = ivr + hold + (rings[bits(8)] if st == 0 else bits(2) * (st > 1))
    bill = talk[bits(12)] if st == 0 else 0
    first = emit(3, t, ring, bill, st, c, agent, other if xfer else None, route, hold, ivr,
                 linked, seqno, xfer, ext)  # fmt: skip
    if k >= 2:  # the transfer: a consultation call, then the customer
        t += ring + bill
        if k == 3:
            talk_c = min(bill // 2, 20 + bits(4))
            emit(2, t - talk_c - 1, 1, talk_c, 0, 0, agent, other, None, linked=first, seqno=2)
        st2 = int(rand() < 0.15)
        emit(4, t, rings[bits(8)] if k == 2 else 1, talk[bits(12)] * (1 - st2), st2, c, other,
             None, route, linked=first, seqno=k, xfer=xfer, ext=ext)  # fmt: skip
    return st


def _recorder(
    tables: Tables,
    rnd: Random,
    d: int,
    out: list[Row],
    seqs: Iterator[int],
    chans: Iterator[int],
    derivation: Derivation,
    pbx: Pbx | None,
) -> tuple[Emit, Callable[[], None]]:
    """The ``emit`` and ``done`` of day ``d``: ``emit`` makes a leg of the call being
    made (its CDR, CEL events and queue_log lines) and returns its uniqueid; ``done``
    derives the call's legs and appends them to ``out``."""
    rand, bits = rnd.random, rnd.getrandbits
    ep = tables.epoch[d]
    numbers, clids, crm, carrier = tables.numbers, tables.clids, tables.crm, tables.carrier
    hms, compact, prefix, slash, ymd = (
        tables.hms, tables.compact, tables.prefix, tables.slash, tables.ymd,
    )  # fmt: skip
    costs = tables.costs
    row_of, complete = derivation.row, derivation.complete
    cdrs: list[tuple[str, ...]] = []
    legs: list[list[Any]] = []
    cel: list[Cel] = []
    log: dict[str, list[QueueEvent]] = {}
    # the caller's channel (name, uniqueid) and a transfer's target (name, uniqueid)
    state = ["", "", "", ""]

    def emit(leg: int, t: int, ring: int, bill: int, st: int, c: int, agent: Any, other: Any,
             route: Any, hold: int = 0, ivr: int = 0, linked: str | None = None,
             seqno: int = 1, xfer: str | None = None, ext: str | None = None) -> str:  # fmt: skip
        seq = next(seqs)
        at = ep + t
        uid = f"{at}.{seq}"
        day, s = (d, t) if t < 86400 else (d + 1, t - 86400)
        end = s + ring + bill
        did = ""
        rec: str | None
        if leg == 1:
            proj, clid, dst, cust, chan = agent[4], agent[6], numbers[c], crm[c], agent[3]
            src, dchan, data, rec = proj[2], other, f"PJSIP/{dst}@{other[6:]},60,Tt", "out"
            num, bext = src, dst
        elif leg == 2:
            proj, clid, src, dst, cust = agent[4], agent[7], agent[1], other[1], None
            chan, dchan, data, rec = agent[3], other[3], other[8], "internal" if c else None
            num, bext = src, dst
        else:
            clid, src, cust, chan, proj = clids[c], numbers[c], crm[c], carrier[c], route[3]
            did = route[1]
            dchan, data = (agent[3], agent[8]) if agent else ("", "")
            num, bext = src, agent[1] if agent else ""
            if leg == 3:
                dst, rec, data = did, route[6], route[8]
            else:
                dst, rec = did if leg == 0 else agent[1], "in"
        rfile = tid = text = mfile = comment = value = None
        if st == 0:
            if rec is not None and rand() < 0.9:
                rfile = f"{slash[day]}/{rec}-{dst}-{src}-{ymd[day]}-{compact[s]}-{uid}.wav"
                if rand() < 0.35:
                    tid, text = f"tr-{seq}", TEXTS[bits(3)]
                if rand() < 0.04:
                    mfile = f"ondemand/{slash[day]}/od-{uid}-1.wav"
            if rand() < 0.05:
                comment = COMMENTS[bits(3)]
            if leg == 1:
                value = costs[(bill + 59) // 60]
        # the PBX's channels: the caller's carries on after a transfer (leg 4)
        if leg == 4 or (leg == 3 and seqno > 1):
            a, a_uid = state[0], state[1]
        else:
            a, a_uid = f"{chan}-{next(chans):08x}", uid
            if leg != 2 or linked is None:
                state[0], state[1] = a, a_uid
        if (leg == 4 and xfer == "attended") or (leg == 2 and linked is not None):
            b, b_uid = state[2], state[3]  # the consultation's target, then the caller's
        else:
            b = f"{dchan}-{next(chans):08x}" if dchan else ""
            b_uid = f"{at}.{next(seqs)}" if dchan else ""
        ds, cause = INFO[st][bits(2)]
        cdr = (
            proj[3], src, dst, CONTEXTS[leg], clid, a, b, APPS[leg], data, prefix[day] + hms[s],
            prefix[day + (s + ring) // 86400] + hms[(s + ring) % 86400] if st == 0 else "",
            prefix[day + end // 86400] + hms[end % 86400], str(ring + bill), str(bill),
            STATUSES[st], "DOCUMENTATION", uid, "", "", linked or uid, str(seqno), did,
            rfile or "", "", "", ds, cause, "", "", "",
        )  # fmt: skip
        cdrs.append(cdr)
        legs.append([*row_of(cdr), *_EXTRAS, cust, value, comment, ext, ext and "Tichet CRM",
                     tid, text])  # fmt: skip
        # the CEL events and queue_log lines of the leg
        transfer = None
        if xfer is not None and leg == 3:
            if xfer == "attended":  # the target's channel, rung by the consultation
                state[2], state[3] = f"{other[3]}-{next(chans):08x}", f"{at}.{next(seqs)}"
                transfer = (xfer, state[2], linked or uid)
            else:
                transfer = (xfer, other[1], linked or uid)
        pbx_leg = Leg(at, a, a_uid, b, b_uid, num, dst, CONTEXTS[leg], APPS[leg], data,
                      b_exten=bext)  # fmt: skip
        if leg == 3:
            r = ring - ivr - hold
            if seqno == 1:
                ivr_events(cel, pbx_leg, route[5], ivr)
                cel.append((f"{at + ivr}.000000", "APP_START", a, a_uid, "Queue", data,
                            dst, "ext-queues", num, "", ""))  # fmt: skip
            callid = uid
            queue_events(log.setdefault(callid, []), callid, route[7], at + ivr,
                         agent[3] if agent else "", hold, r, bill, st, num, b_uid,
                         (transfer[0], other[1]) if transfer else None)  # fmt: skip
            pbx_leg.at, pbx_leg.new_a, pbx_leg.start_app = at + ivr + hold, False, False
            pbx_leg.end_a = transfer is None and not (st and agent is not None and linked is None)
            dial_events(cel, pbx_leg, r, bill, st, mfile, transfer)
        else:
            if leg == 4:
                pbx_leg.new_a = False
                pbx_leg.start_app = xfer == "blind"
                pbx_leg.b_started = xfer == "attended"
            elif leg == 2 and linked is not None:  # an attended transfer's consultation
                pbx_leg.ends_call, pbx_leg.b_stays = False, True
            dial_events(cel, pbx_leg, ring, bill, st, mfile)
        return uid

    def done() -> None:
        if pbx is not None:
            cel.sort(key=_FIRST)
            pbx.call(list(cdrs), list(cel), [e for events in log.values() for e in events])
        elif len(legs) > 1:
            cel.sort(key=_FIRST)
        complete(legs, cdrs[0][19], cel, log)
        out.extend(map(tuple, legs))
        cdrs.clear()
        legs.clear()
        cel.clear()
        log.clear()

    return emit, done


_FIRST = itemgetter(0)
