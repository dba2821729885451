"""The demo's calls, made day by day from a run's tables.

:func:`made` makes them in the order they happen, each kind of event (:func:`_outbound`,
:func:`_internal`, :func:`_reception`, :func:`_queued`) making its legs with the day's
``emit`` (:func:`_recorder`): the raw CDR a PBX writes
(:data:`cdrapi.ingest.cdr.CDR_FIELDS`), its CEL events and queue_log lines
(:mod:`cdrapi.demo.events`); when the call is complete (``done``), its legs are derived
by ingestion's own code (:mod:`cdrapi.demo.derivation`). Only what no PBX log holds (CRM
ids, comments, costs, transcriptions) is drawn here. Several processes can share the
work (each makes its share of the calls, and draws all of them); :func:`records` is one
process making them all, handed out in time order and marked recovered by
:mod:`cdrapi.demo.days`. With ``pbx`` given, each call's CDRs, CEL events and queue_log
lines are handed to it too (``cdrapi demo --write-files``: :mod:`cdrapi.demo.files`).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterator
from itertools import count
from operator import itemgetter
from random import Random
from typing import Any

from cdrapi.demo.days import DEMO_COLUMNS, DayEnd, Deal, Row, in_order
from cdrapi.demo.derivation import Derivation
from cdrapi.demo.events import Cel, Leg, Pbx, QueueEvent, dial_events, ivr_events, queue_events
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

__all__ = ["DEMO_COLUMNS", "Pbx", "Row", "made", "records"]

# Legs (records) by what they are: 0 customer to reception, 1 outbound, 2 internal,
# 3 customer through a queue, 4 customer after a transfer.
CONTEXTS = ("from-pstn", "from-internal", "from-internal", "ext-queues", "from-internal-xfer")
APPS = ("Dial", "Dial", "Dial", "Queue", "Dial")
_EXTRAS = (None, None, 0, None, 0, None, None, None)  # the queue_log's and CEL's, unset

#: Appends one leg to the call being made and returns its uniqueid (see :func:`_recorder`).
Emit = Callable[..., str]


def records(seed: int, calls: int, dates: list[dt.date], pbx: Pbx | None = None) -> Iterator[Row]:
    """Yield ``calls`` records over ``dates`` in time order, as tuples of ``DEMO_COLUMNS``.

    The calls are made by :func:`made` and handed out day by day by
    :func:`cdrapi.demo.days.in_order` (which marks the missed calls recovered).
    """
    return in_order([made(seed, calls, dates, pbx)])


def made(
    seed: int,
    calls: int,
    dates: list[dt.date],
    pbx: Pbx | None = None,
    share: int = 0,
    shares: int = 1,
) -> Iterator[list[Row] | DayEnd]:
    """The derived rows of the calls this process makes (its ``share`` of ``shares``),
    in the order they are made, a chunk (a list) at a time; after each day's, the
    :data:`~cdrapi.demo.days.DayEnd`: the midnight that ends it (``"YYYY-MM-DD "``)
    and the calls made so far.

    The steps: the run's tables (:func:`~cdrapi.demo.shape.draw_tables`), then day by
    day the day's events (:func:`_day`, each making its legs with the day's
    :func:`_recorder`). With several ``shares``, each process draws every call (the
    draws are cheap, and they decide all that comes after) but makes and derives only
    its own: the run's calls are dealt in chunks of :data:`SHARE_CALLS`, chunk ``n`` to
    share ``n % shares``. The rows are derived but not
    yet marked recovered (:func:`cdrapi.demo.days.in_order` does that, over all shares).
    """
    rnd = Random(seed)
    tables = draw_tables(rnd, calls, dates)
    seqs, chans = count(101), count(17)
    derivation = Derivation()
    pending: deque[int] = deque()  # customers who will call back or be called back
    dealt = Deal(share, shares)
    for d, date in enumerate(dates):
        out: list[Row] = []  # this day's rows, in the order they were made
        dealt.day(out)
        emit, done = _recorder(tables, rnd, d, out, seqs, chans, derivation, pbx, dealt.mine)
        _day(tables, rnd, d, date, emit, done, pending)
        if pbx is not None:
            pbx.day(tables.prefix[d + 1], tables.epoch[d + 1])
        yield from dealt.chunks()
        yield tables.prefix[d + 1], dealt.calls
    if pbx is not None:
        pbx.end()


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
    mine: Callable[[], bool],
) -> tuple[Emit, Callable[[], None]]:
    """The ``emit`` and ``done`` of day ``d``: ``emit`` makes a leg of the call being
    made (its CDR, CEL events and queue_log lines) and returns its uniqueid; ``done``
    derives the call's legs and appends them to ``out``.

    A call that is not ``mine()`` (another process makes it, see :func:`made`) only
    draws: ``emit`` takes the same draws and numbers (uniqueids, channels) and makes
    nothing else, so the calls after it are the same in every process.
    """
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
    # whether this call is made here (derived), and whether its PBX logs are (for pbx)
    making: list[bool | None] = [None, pbx is not None]

    def emit(leg: int, t: int, ring: int, bill: int, st: int, c: int, agent: Any, other: Any,
             route: Any, hold: int = 0, ivr: int = 0, linked: str | None = None,
             seqno: int = 1, xfer: str | None = None, ext: str | None = None) -> str:  # fmt: skip
        if making[0] is None:  # the call's first leg
            making[0] = mine()
        # the draws and numbers, the same whether the call is made here or not
        seq = next(seqs)
        at = ep + t
        uid = f"{at}.{seq}"
        recorded = monitored = False
        text = comment = -1
        if st == 0:
            recorded = (leg != 2 or c != 0) and rand() < 0.9
            if recorded:
                text = bits(3) if rand() < 0.35 else -1
                monitored = rand() < 0.04
            comment = bits(3) if rand() < 0.05 else -1
        new_a = leg != 4 and (leg != 3 or seqno == 1)
        a_n = next(chans) if new_a else 0
        b_kept = (leg == 4 and xfer == "attended") or (leg == 2 and linked is not None)
        b_n = b_seq = 0
        if not b_kept and (leg in (1, 2) or agent):  # a called channel
            b_n, b_seq = next(chans), next(seqs)
        ds, cause = INFO[st][bits(2)]
        target = None
        if xfer == "attended" and leg == 3:  # the target's channel, rung by the consultation
            target = (next(chans), next(seqs))
        if not making[0] and not making[1]:
            return uid
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
        rfile = tid = words = mfile = None
        if recorded:
            rfile = f"{slash[day]}/{rec}-{dst}-{src}-{ymd[day]}-{compact[s]}-{uid}.wav"
            if text >= 0:
                tid, words = f"tr-{seq}", TEXTS[text]
            if monitored:
                mfile = f"ondemand/{slash[day]}/od-{uid}-1.wav"
        # the PBX's channels: the caller's carries on after a transfer (leg 4)
        if new_a:
            a, a_uid = f"{chan}-{a_n:08x}", uid
            if leg != 2 or linked is None:
                state[0], state[1] = a, a_uid
        else:
            a, a_uid = state[0], state[1]
        if b_kept:
            b, b_uid = state[2], state[3]  # the consultation's target, then the caller's
        elif b_n:
            b, b_uid = f"{dchan}-{b_n:08x}", f"{at}.{b_seq}"
        else:
            b = b_uid = ""
        cdr = (
            proj[3], src, dst, CONTEXTS[leg], clid, a, b, APPS[leg], data, prefix[day] + hms[s],
            prefix[day + (s + ring) // 86400] + hms[(s + ring) % 86400] if st == 0 else "",
            prefix[day + end // 86400] + hms[end % 86400], str(ring + bill), str(bill),
            STATUSES[st], "DOCUMENTATION", uid, "", "", linked or uid, str(seqno), did,
            rfile or "", "", "", ds, cause, "", "", "",
        )  # fmt: skip
        cdrs.append(cdr)
        if making[0]:
            legs.append([*row_of(cdr), *_EXTRAS, cust,
                         costs[(bill + 59) // 60] if leg == 1 and st == 0 else None,
                         COMMENTS[comment] if comment >= 0 else None, ext,
                         ext and "Tichet CRM", tid, words])  # fmt: skip
        # the CEL events and queue_log lines of the leg
        transfer = None
        if xfer is not None and leg == 3:
            if target is not None:
                state[2], state[3] = f"{other[3]}-{target[0]:08x}", f"{at}.{target[1]}"
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
        if making[0] or making[1]:
            if pbx is not None or len(legs) > 1:
                cel.sort(key=_FIRST)
            if pbx is not None:
                pbx.call(list(cdrs), list(cel), [e for events in log.values() for e in events])
            if making[0]:
                complete(legs, cdrs[0][19], cel, log)
                out.extend(map(tuple, legs))
            cdrs.clear()
            legs.clear()
            cel.clear()
            log.clear()
        making[0] = None

    return emit, done


_FIRST = itemgetter(0)
