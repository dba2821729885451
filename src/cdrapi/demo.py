"""Synthetic PBX traffic of a Romanian call centre, for demos, tests and benchmarks.

:func:`generate` writes a small directory (projects, agents, queues, trunks, inbound
routes) and ``calls`` records spread over a span of days in business-hours rhythm:
inbound calls through queues (some abandoned, some ringing an agent who does not answer,
some transferred), direct calls to reception, outbound calls to a pool of customers
(some calling back a missed caller, which makes ``is_recovered`` meaningful), and
internal calls. Output is a pure function of the arguments: one ``random.Random(seed)``
drives everything, and records are written in time order.

It is built for speed (about 50,000 calls a second into a fresh SQLite file, index
build included, on two idle cores): draws come from precomputed tables, times are
integer seconds formatted from lookup tables, rows are tuples, the store is bulk loaded,
and for big runs a producer process makes the records while this one inserts them.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import count, islice
from operator import itemgetter
from random import Random
from typing import Any

from sqlalchemy import Engine, func, select

from cdrapi.producer import can_fork, produced
from cdrapi.store.bulk import bulk_load
from cdrapi.store.calls import CALL_COLUMNS, insert_call_rows
from cdrapi.store.directory import replace_directory
from cdrapi.store.schema import calls as calls_table

__all__ = ["DemoSummary", "generate"]

Row = tuple[Any, ...]


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate` wrote."""

    calls: int
    start: dt.date
    end: dt.date
    first_id: int | None
    last_id: int | None
    projects: int
    users: int
    queues: int
    inbound_routes: int
    trunks: int


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# --- the directory -------------------------------------------------------------------

PROJECTS = (
    (1, "Suport Clienți", "0312285000", "SUP"),
    (2, "Vânzări", "0372110200", "VNZ"),
    (3, "Retenție", "0372110300", "RET"),
)
FIRST = _words(
    "Andrei Maria Ioana Mihai Elena Alexandru Ana Cristian Gabriela Ion Irina Vlad "
    "Raluca Ștefan Diana Bogdan Alina Radu Cristina Florin Oana Adrian Simona George "
    "Larisa Marius Bianca Dan Teodora Sorin Roxana Cătălin Andreea Lucian Monica Tudor "
    "Corina Ovidiu Iulia Răzvan"
)
LAST = _words(
    "Popescu Ionescu Popa Pop Radu Dumitru Stan Stoica Gheorghe Matei Ciobanu Rusu "
    "Munteanu Marin Tudor Dinu Constantin Moldovan Șerban Lungu Barbu Nistor Florea "
    "Cristea Toma Dobre Ilie Preda Neagu Mocanu Enache Voicu Sandu Coman Lazăr Diaconu "
    "Bălan Mihăilă Oprea Vasile"
)
_ASCII = str.maketrans("ăâîșțşţĂÂÎȘȚ", "aaiststAAIST")
# id, name, project, members (user ids)
QUEUES = (
    (1, "suport", 1, range(1, 17)),
    (2, "suport-vip", 1, (*range(1, 7), *range(17, 21))),
    (3, "facturare", 1, range(14, 21)),
    (4, "vanzari", 2, range(21, 33)),
    (5, "retentie", 3, range(33, 41)),
)
# id, did, name, project, queue id (None: reception), IVR menu text (None: no IVR), weight
ROUTES = (
    (1, "0312285000", "Linie suport", 1, 1, "Meniu principal > 1 Suport tehnic", 22),
    (2, "0312285001", "Suport VIP", 1, 2, None, 5),
    (3, "0372110200", "Vânzări", 2, 4, "Meniu vânzări > 2 Oferte noi", 12),
    (4, "0372110201", "Campanie radio", 2, 4, None, 4),
    (5, "0312285010", "Facturare", 1, 3, "Meniu principal > 2 Facturare", 9),
    (6, "0372110300", "Retenție", 3, 5, None, 7),
    (7, "0312285020", "Recepție", 1, None, None, 0),
    (8, "0372110400", "Linie Cluj", 1, 1, "Meniu Cluj > 1 Suport", 5),
)
ROUTE_KEYS = ("id", "did", "name", "project_id")
TRUNKS = (
    (1, "Orange SIP", "PJSIP/orange-sip"),
    (2, "Vodafone SIP", "PJSIP/vodafone-sip"),
    (3, "Digi SIP", "PJSIP/digi-sip"),
)

# --- traffic shape ---------------------------------------------------------------------

STATUSES = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION")
# call_status_info variants by status, four each (drawn with getrandbits(2))
INFO = tuple(
    tuple((variants.split(";") * 4)[:4])
    for variants in (
        "DS:ANSWER|HC:16|HI:Normal Clearing",
        "DS:NOANSWER|HC:19|HI:No answer;DS:CANCEL|HC:16|HI:Normal Clearing;"
        "DS:NOANSWER|HC:16|HI:Normal Clearing;DS:CANCEL|HC:127|HI:Interworking, unspecified",
        "DS:BUSY|HC:17|HI:SIP 486 Busy Here;DS:BUSY|HC:17|HI:User busy",
        "DS:CHANUNAVAIL|HC:3|HI:SIP 404 Not Found;DS:CHANUNAVAIL|HC:20|HI:Subscriber absent;"
        "DS:CONGESTION|HC:34|HI:SIP 503 Service Unavailable;"
        "DS:CHANUNAVAIL|HC:1|HI:Unallocated (unassigned) number",
        "DS:CONGESTION|HC:34|HI:Circuit/channel congestion;DS:CONGESTION|HC:38|HI:Network out "
        "of order;DS:CONGESTION|HC:42|HI:Switching equipment congestion",
    )
)
# by kind of leg: IN, OUT, INTERNAL, queue (direction IN)
DIRECTIONS = ("IN", "OUT", "INTERNAL", "IN")
CODES = ("inbound", "outbound", "internal", "queue")
CALL_CODES = tuple(
    tuple(f"{prefix} {word}" for word in ("answered", "no answer", "busy", "no answer", "failed"))
    for prefix in ("in", "out", "int", "queue")
)
TEXTS = tuple(  # transcriptions, eight (drawn with getrandbits(3))
    "Bună ziua, vă sun în legătură cu factura din luna trecută.|Aș dori să verific stadiul "
    "comenzii mele, am plasat-o săptămâna trecută.|Am o problemă cu conexiunea la internet "
    "de ieri seară.|Vă rog să-mi trimiteți oferta pe email, mulțumesc.|Doresc să reziliez "
    "contractul la sfârșitul lunii.|Mulțumesc frumos, problema a fost rezolvată.|Puteți să "
    "mă sunați înapoi după ora cinci?|Aș vrea să trec pe un abonament mai ieftin.".split("|")
)
COMMENTS = tuple(
    "Client nemulțumit, revine mâine|Ofertă trimisă pe email|Tichet deschis|Rezolvat la "
    "primul apel|Programat apel înapoi|Cere factură duplicat|Interesat de abonamentul Plus|"
    "Număr greșit".split("|")
)
# relative number of calls in each hour of the day
WEEKDAY_HOURS = tuple(
    map(int, _words("2 1 1 1 1 2 5 15 60 100 130 140 110 90 100 110 90 70 20 10 6 4 3 2"))
)
WEEKEND_HOURS = (3, 2, 1, 1, 1, 1, 2, 4, 8, 14, 18, 18, 16, 14, 12, 10, 8, 6, 5, 4, 3, 3, 3, 3)
HOLIDAYS = ((1, 1), (1, 2), (1, 24), (5, 1), (6, 1), (8, 15), (11, 30), (12, 1), (12, 25), (12, 26))
# event kinds: 0 queue, 1 queue + agent not answering, 2 queue + blind transfer,
# 3 queue + attended transfer, 4 reception, 5 outbound, 6 internal
KIND_WEIGHTS = (440, 50, 40, 15, 50, 300, 105)
LEGS = (1, 2, 2, 3, 1, 1, 1)
PREFIXES = _words("072 073 074 075 076 077 078 021 031 0264 0232 0256 0268 0241 0364")
RECORDING_URL = "https://pbx.demo.cdrapi.ro/recordings/"


def _table(weights: Sequence[float], values: Sequence[Any], bits: int) -> list[Any]:
    """A 2**bits list where each value fills a share of slots proportional to its weight."""
    size, total, out = 1 << bits, sum(weights), list[Any]()
    acc = 0.0
    for weight, value in zip(weights, values, strict=True):
        acc += weight
        out.extend([value] * (round(acc * size / total) - len(out)))
    return out


def _skewed(rnd: Random, bits: int, low: int, mean: float, high: int) -> list[int]:
    """A draw table of durations: exponential around ``mean``, clipped to [low, high]."""
    return sorted(min(high, low + int(rnd.expovariate(1 / mean))) for _ in range(1 << bits))


def _utc_offset(day: dt.date) -> int:
    """Hours Europe/Bucharest is ahead of UTC on ``day`` (EU summer time rule)."""

    def last_sunday(month: int) -> dt.date:
        d = dt.date(day.year, month, 31)
        return d - dt.timedelta(days=(d.weekday() + 1) % 7)

    return 3 if last_sunday(3) <= day < last_sunday(10) else 2


def _directory() -> dict[str, list[dict[str, Any]]]:
    """The demo's directory rows, by table."""
    users = [
        dict(id=uid, extension=str(99 + uid), fullname=name, project_id=(uid > 20) + (uid > 32) + 1,
             channel_pattern="PJSIP/" + name.lower().translate(_ASCII).replace(" ", "-"))
        for uid, name in enumerate(map(" ".join, zip(FIRST, LAST, strict=True)), 1)
    ]  # fmt: skip
    return {
        "projects": [{"id": p[0], "name": p[1]} for p in PROJECTS],
        "users": users,
        "queues": [{"id": q[0], "name": q[1], "project_id": q[2]} for q in QUEUES],
        "trunks": [{"id": t[0], "name": t[1], "channel_pattern": t[2]} for t in TRUNKS],
        "inbound_routes": [dict(zip(ROUTE_KEYS, r[:4], strict=False)) for r in ROUTES],
    }


def _allocate(rnd: Random, total: int, days: list[dt.date]) -> list[int]:
    """Split ``total`` records over ``days`` by weekday weight (largest remainder)."""
    weights = []
    for day in days:
        base = (1.0, 1.0, 1.0, 1.0, 0.95, 0.2, 0.08)[day.weekday()]
        base = 0.1 if (day.month, day.day) in HOLIDAYS else base
        weights.append(base * (0.9 + 0.2 * rnd.random()))
    shares = [total * w / sum(weights) for w in weights]
    counts = [int(s) for s in shares]
    by_remainder = sorted(range(len(days)), key=lambda i: counts[i] - shares[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _customers(rnd: Random, size: int) -> tuple[list[str], list[str], list[str | None]]:
    """Numbers, caller ids and CRM ids of the customer pool: mobiles and landlines."""
    rand, prefixes = rnd.random, _table((9,) * 7 + (5, 4, 2, 2, 2, 2, 1, 1), PREFIXES, 8)
    numbers, clids, crm = [], [], []
    for i in range(size):
        prefix = prefixes[int(rand() * 256)]
        number = prefix + f"{int(rand() * 1e10):010d}"[len(prefix) :]
        known = rand() < 0.45
        name = f"{FIRST[int(rand() * 40)]} {LAST[int(rand() * 40)]}" if known else number
        numbers.append(number)
        clids.append(f'"{name}" <{number}>')
        crm.append(f"C{100000 + i}" if known else None)
    return numbers, clids, crm


# Legs (records) by what they are: 0 customer to reception, 1 outbound, 2 internal,
# 3 customer through a queue, 4 customer after a transfer.
CONTEXTS = ("from-pstn", "from-internal", "from-internal", "ext-queues", "from-internal-xfer")
APPS = ("Dial", "Dial", "Dial", "Queue", "Dial")
# The columns the demo fills (the others stay NULL), in the order of its tuples.
COLUMNS = tuple(c for c in CALL_COLUMNS if c not in ("source_key", "userfield", "peeraccount"))
_TIME, _RECOVERED = itemgetter(COLUMNS.index("time")), COLUMNS.index("is_recovered")
# From this many calls on (and with a second CPU), a producer process makes the records
# while this one inserts them.
PROCESS_THRESHOLD = 150_000
BATCH = 25_000  # records per transaction: fewer commits and WAL checkpoints than the default
CHUNK = 2000  # records a producer process sends at a time


Agent = tuple[Any, ...]  # id, ext, name, channel, project, details, clid out, clid internal, dial
Route = tuple[Any, ...]  # id, did, name, project, queue members, IVR menu, recording prefix,
#                          queue name, queue app data
Missed = tuple[int, str, int]  # (row index in its day, number, start) of a missed call
#: Appends one record to its day and returns its uniqueid (see :func:`_recorder`).
Emit = Callable[..., str]


@dataclass(frozen=True, slots=True)
class _Tables:
    """What a run draws from and formats with, made once by :func:`_tables`."""

    per_day: list[int]  # records of each day
    pool: int  # customers
    numbers: list[str]  # by customer: number, caller id, CRM id, trunk
    clids: list[str]
    crm: list[str | None]
    carrier: list[str]
    trunk_of: list[str]  # trunks, drawn with getrandbits(4)
    hms: list[str]  # by second of the day: "HH:MM:SS", "HHMMSS"
    compact: list[str]
    prefix: list[str]  # by day index (the dates and two more): "YYYY-MM-DD ", ...
    slash: list[str]
    ymd: list[str]
    epoch: list[int]  # the day's local midnight in UTC seconds
    agents: list[Agent]
    reception: Route
    qroutes: list[Route]  # inbound routes through a queue, drawn with getrandbits(6)
    callers: list[Agent]  # agents who call out, drawn with getrandbits(8)
    kinds_of: list[int]  # event kinds, drawn with getrandbits(10)
    in_status: list[int]  # status indexes by kind of call, drawn with getrandbits(10)
    direct_status: list[int]
    out_status: list[int]
    int_status: list[int]
    workday_hours: list[int]  # start of the hour (seconds), drawn with getrandbits(12)
    offday_hours: list[int]
    talk: list[int]  # durations (seconds), drawn with getrandbits(12, 10, 10, 8, 8)
    waits: list[int]
    abandons: list[int]
    rings: list[int]
    ivrs: list[int]
    costs: list[str]  # by billed minute


def _agents() -> list[Agent]:
    """The directory's users as the records need them."""
    projects = {p[0]: p for p in PROJECTS}
    agents = []
    for user in _directory()["users"]:
        name, ext, chan = user["fullname"], user["extension"], user["channel_pattern"]
        proj = projects[user["project_id"]]
        clids_of = f'"{name}" <{proj[2]}>', f'"{name}" <{ext}>'
        agents.append((user["id"], ext, name, chan, proj, f"{name} ({ext})", *clids_of,
                       f"{chan},30,tr"))  # fmt: skip
    return agents


def _routes(agents: list[Agent]) -> list[Route]:
    """The inbound routes as the records need them (their queue's members...)."""
    projects = {p[0]: p for p in PROJECTS}
    queues = {q[0]: (q[1], [agents[u - 1] for u in q[3]], f"{q[1]},t,,,300") for q in QUEUES}
    routes = []
    for r in ROUTES:
        qname, members, qdata = queues.get(r[4] or 0, (None, None, None))
        routes.append((*r[:3], projects[r[3]], members, r[5], f"q-{qname}", qname, qdata))
    return routes


def _tables(rnd: Random, calls: int, dates: list[dt.date]) -> _Tables:
    """The run's tables: the first draws of ``rnd`` (records per day, customers, their
    trunks, durations), then what needs none."""
    bits = rnd.getrandbits
    per_day, pool = _allocate(rnd, calls, dates), max(50, calls // 6)
    numbers, clids, crm = _customers(rnd, pool)
    trunk_of = _table((5, 3, 2), [t[2] for t in TRUNKS], 4)
    carrier = [trunk_of[bits(4)] for _ in range(pool)]
    hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]
    span = [*dates, *(dates[-1] + dt.timedelta(days=i) for i in (1, 2))]
    agents = _agents()
    routes = _routes(agents)
    hours = [h * 3600 for h in range(24)]
    talk, waits = _skewed(rnd, 12, 8, 170, 3600), _skewed(rnd, 10, 0, 35, 600)
    abandons, rings = _skewed(rnd, 10, 3, 60, 900), _skewed(rnd, 8, 2, 6, 30)
    return _Tables(
        per_day=per_day,
        pool=pool,
        numbers=numbers,
        clids=clids,
        crm=crm,
        carrier=carrier,
        trunk_of=trunk_of,
        hms=hms,
        compact=[h.replace(":", "") for h in hms],
        prefix=[f"{d.isoformat()} " for d in span],
        slash=[d.strftime("%Y/%m/%d") for d in span],
        ymd=[d.strftime("%Y%m%d") for d in span],
        epoch=[(d - dt.date(1970, 1, 1)).days * 86400 - _utc_offset(d) * 3600 for d in span],
        agents=agents,
        reception=routes[6],
        qroutes=_table([r[6] for r in ROUTES], routes, 6),
        callers=_table([(1, 4, 2)[a[4][0] - 1] for a in agents], agents, 8),
        kinds_of=_table(KIND_WEIGHTS, range(7), 10),
        in_status=_table((850, 120, 0, 15, 15), range(5), 10),
        direct_status=_table((78, 12, 8, 1, 1), range(5), 10),
        out_status=_table((58, 26, 9, 5, 2), range(5), 10),
        int_status=_table((80, 15, 5, 0, 0), range(5), 10),
        workday_hours=_table(WEEKDAY_HOURS, hours, 12),
        offday_hours=_table(WEEKEND_HOURS, hours, 12),
        talk=talk,
        waits=waits,
        abandons=abandons,
        rings=rings,
        ivrs=_skewed(rnd, 8, 5, 12, 90),  # the last draw of the tables
        costs=[f"{m * 0.045:.2f}" for m in range(62)],
    )


def _records(seed: int, calls: int, dates: list[dt.date]) -> Iterator[Row]:
    """Yield ``calls`` records over ``dates`` in time order, as tuples of ``COLUMNS``.

    The steps: the run's tables (:func:`_tables`), then day by day the day's events
    (:func:`_day`, each making its legs' records with the day's :func:`_recorder`);
    a day's records are handed out once the next day is made (:func:`_complete`):
    whether its missed calls were recovered depends on the next 24 hours, and its legs
    that started after midnight belong to the next day.
    """
    rnd = Random(seed)
    tables = _tables(rnd, calls, dates)
    seqs, chans = count(101), count(17)
    pending: deque[int] = deque()  # customers who will call back or be called back
    previous: tuple[list[Row], list[Missed], dict[str, list[int]]] | None = None
    for d in range(len(dates) + 1):
        out: list[Row] = []  # this day's records, in the order they were made
        answered: dict[str, list[int]] = {}  # number -> start times of its answered calls
        missed: list[Missed] = []
        if d < len(dates):
            emit = _recorder(tables, rnd, d, out, answered, seqs, chans)
            missed = _day(tables, rnd, d, dates[d], emit, out, pending)
        if previous is not None:  # the previous day is complete now that this one exists
            rows, lost, done = previous
            later = _complete(rows, lost, done, answered, tables.prefix[d])
            out.extend(later)  # legs that started after midnight
            yield from rows
        previous = (out, missed, answered)
    yield from out


def _complete(
    rows: list[Row],
    lost: list[Missed],
    done: dict[str, list[int]],
    answered: dict[str, list[int]],
    midnight: str,
) -> list[Row]:
    """Complete a day's ``rows`` now that the next day is made: mark its ``lost`` calls
    recovered (answered within the next 24 hours: ``done`` that day, ``answered`` the
    next), sort them by time, and cut off and return those from ``midnight`` on."""
    for i, number, at in lost:
        later = (*done.get(number, ()), *answered.get(number, ()))
        recovered = int(any(at < when <= at + 86400 for when in later))
        rows[i] = (*rows[i][:_RECOVERED], recovered, *rows[i][_RECOVERED + 1 :])
    rows.sort(key=_TIME)
    cut = bisect_left(rows, midnight, key=_TIME)
    after = rows[cut:]
    del rows[cut:]
    return after


def _day(
    tables: _Tables,
    rnd: Random,
    d: int,
    day: dt.date,
    emit: Emit,
    out: list[Row],
    pending: deque[int],
) -> list[Missed]:
    """Make the events of day ``d`` (``day``) in time order, their records appended to
    ``out`` by ``emit``; return its missed calls with customers."""
    rand, bits = rnd.random, rnd.getrandbits
    base, pool = d * 86400, tables.pool
    workday = day.weekday() < 5 and (day.month, day.day) not in HOLIDAYS
    hours = tables.workday_hours if workday else tables.offday_hours
    kinds_of, kinds, left = tables.kinds_of, [], tables.per_day[d]
    while left > 0:
        k = kinds_of[bits(10)]
        k = k if LEGS[k] <= left else 0
        kinds.append(k)
        left -= LEGS[k]
    times = sorted([hours[bits(12)] + int(rand() * 3600) for _ in kinds])
    missed: list[Missed] = []
    for k, t in zip(kinds, times, strict=True):
        if k == 5:
            _outbound(tables, rnd, emit, pending, t)
            continue
        if k == 6:
            _internal(tables, rnd, emit, t)
            continue
        c = pending.popleft() if pending and rand() < 0.3 else int(rand() * pool)
        ext = f"TCK-{bits(24)}" if rand() < 0.05 else None
        opened = workday and 28800 <= t < 64800
        idx, at = len(out), base + t  # where a missed call's record will be
        if k == 4:
            st = _reception(tables, rnd, emit, t, c, ext, opened)
        else:
            st = _queued(tables, rnd, emit, k, t, c, ext, opened)
        if st:
            missed.append((idx, tables.numbers[c], at))
            if rand() < 0.6:
                pending.append(c)
    return missed


def _outbound(tables: _Tables, rnd: Random, emit: Emit, pending: deque[int], t: int) -> None:
    """An agent calls a customer out, sometimes calling back a missed caller."""
    rand, bits, rings = rnd.random, rnd.getrandbits, tables.rings
    agent = tables.callers[bits(8)]
    c = pending.popleft() if pending and rand() < 0.35 else int(rand() * tables.pool)
    st = tables.out_status[bits(10)]
    ring = (rings[bits(8)], 30 + bits(5), 2 + bits(3), bits(2), bits(2))[st]
    bill = tables.talk[bits(12)] if st == 0 else 0
    ext = f"CRM-{bits(24)}" if rand() < 0.2 else None
    emit(1, t, ring, bill, st, c, agent, tables.trunk_of[bits(4)], None, ext=ext)


def _internal(tables: _Tables, rnd: Random, emit: Emit, t: int) -> None:
    """An agent calls another."""
    rand, bits, agents, rings = rnd.random, rnd.getrandbits, tables.agents, tables.rings
    a, b = agents[int(rand() * 40)], agents[int(rand() * 40)]
    b = agents[a[0] % 40] if a is b else b
    st = tables.int_status[bits(10)]
    ring = (rings[bits(8)], 15 + bits(4), 1, 0, 0)[st]
    bill = tables.talk[bits(12)] // 3 if st == 0 else 0
    emit(2, t, ring, bill, st, int(rand() < 0.2), a, b, None)


def _reception(
    tables: _Tables, rnd: Random, emit: Emit, t: int, c: int, ext: str | None, opened: bool
) -> int:
    """Customer ``c`` dials reception directly; return the call's status index."""
    rand, bits, rings = rnd.random, rnd.getrandbits, tables.rings
    st = tables.direct_status[bits(10)] if opened else int(rand() > 0.1)
    ring = (rings[bits(8)], 20 + bits(4), bits(2), bits(2), bits(2))[st]
    bill = tables.talk[bits(12)] if st == 0 else 0
    emit(0, t, ring, bill, st, c, tables.agents[bits(1)], None, tables.reception, ext=ext)
    return st


def _queued(
    tables: _Tables,
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
    linked, seqno, xfers, other = None, 1, None, agent
    if k == 1:
        rang = members[int(rand() * len(members))]
        linked = emit(3, t, ivr + hold + 15, 0, 1, c, rang, None, route, hold, ivr)
        t, ivr, hold, seqno = t + ivr + hold + 15, 0, 0, 2
    elif k >= 2:
        other = tables.agents[(agent[0] + bits(3)) % 40]
        xfers = f"{('blind', 'attended')[k - 2]} {agent[1]} -> {other[1]}"
    ring = ivr + hold + (rings[bits(8)] if st == 0 else bits(2) * (st > 1))
    bill = talk[bits(12)] if st == 0 else 0
    first = emit(3, t, ring, bill, st, c, agent, None, route, hold, ivr, linked, seqno, xfers,
                 ext)  # fmt: skip
    if k >= 2:  # the transfer: a consultation call, then the customer
        t += ring + bill
        if k == 3:
            talk_c = min(bill // 2, 20 + bits(4))
            emit(2, t - talk_c - 1, 1, talk_c, 0, 0, agent, other, None, linked=first, seqno=2)
        st2 = int(rand() < 0.15)
        emit(4, t, rings[bits(8)] if k == 2 else 1, talk[bits(12)] * (1 - st2), st2, c, other,
             None, route, linked=first, seqno=k, xfers=xfers, ext=ext)  # fmt: skip
    return st


def _recorder(
    tables: _Tables,
    rnd: Random,
    d: int,
    out: list[Row],
    answered: dict[str, list[int]],
    seqs: Iterator[int],
    chans: Iterator[int],
) -> Emit:
    """The ``emit`` of day ``d``: it appends a record to ``out`` (answered calls with a
    customer noted in ``answered``) and returns its uniqueid."""
    rand, bits = rnd.random, rnd.getrandbits
    ep, base = tables.epoch[d], d * 86400
    numbers, clids, crm, carrier = tables.numbers, tables.clids, tables.crm, tables.carrier
    hms, compact, prefix, slash, ymd = (
        tables.hms, tables.compact, tables.prefix, tables.slash, tables.ymd,
    )  # fmt: skip
    costs = tables.costs

    def emit(leg: int, t: int, ring: int, bill: int, st: int, c: int, agent: Any, other: Any,
             route: Any, hold: int = 0, ivr: int = 0, linked: str | None = None,
             seqno: int = 1, xfers: str | None = None, ext: str | None = None) -> str:  # fmt: skip
        """Append one record and return its uniqueid.

        ``c`` is the customer (for internal legs: whether to record), ``agent`` the agent
        (or None), ``other`` the trunk (outbound) or the called agent (internal).
        """
        seq = next(seqs)
        uid = f"{ep + t}.{seq}"
        day, s = (d, t) if t < 86400 else (d + 1, t - 86400)
        end = s + ring + bill
        qname = qlog = menu = details = did = route_id = route_name = None
        rec: str | None
        if leg == 1:
            kind, proj, clid, dst, cust, chan = 1, agent[4], agent[6], numbers[c], crm[c], agent[3]
            src, dchan, data, rec = proj[2], other, f"PJSIP/{dst}@{other[6:]},60,Tt", "out"
        elif leg == 2:
            kind, proj, clid, src, dst, cust = 2, agent[4], agent[7], agent[1], other[1], None
            chan, dchan, data, rec = agent[3], other[3], other[8], "internal" if c else None
        else:
            clid, src, cust, chan, proj = clids[c], numbers[c], crm[c], carrier[c], route[3]
            did, route_id, route_name = route[1], route[0], route[2]
            dchan, data = (agent[3], agent[8]) if agent else ("", "")
            if leg == 3:
                kind, dst, rec, qname, data, menu = 3, did, route[6], route[7], route[8], route[5]
                if agent is None:
                    qlog = f"ENTERQUEUE {qname}; ABANDON after {hold}s" if st == 1 else None
                elif st:
                    qlog = f"ENTERQUEUE {qname}; RINGNOANSWER {agent[1]}"
                    details = f"{agent[5]}: RINGNOANSWER"
                else:
                    qlog = f"ENTERQUEUE {qname}; CONNECT {agent[1]} after {hold}s"
                    details = agent[5]
            else:
                kind, dst, rec = 0, did if leg == 0 else agent[1], "in"
                details = agent[5] if leg == 4 else None
        rfile = rurl = tid = text = mfile = murl = comment = value = None
        if st == 0:
            if rec is not None and rand() < 0.9:
                rfile = f"{slash[day]}/{rec}-{dst}-{src}-{ymd[day]}-{compact[s]}-{uid}.wav"
                rurl = RECORDING_URL + rfile
                if rand() < 0.35:
                    tid, text = f"tr-{seq}", TEXTS[bits(3)]
                if rand() < 0.04:
                    mfile = f"ondemand/{slash[day]}/od-{uid}-1.wav"
                    murl = RECORDING_URL + mfile
            if rand() < 0.05:
                comment = COMMENTS[bits(3)]
            if kind == 1:
                value = costs[(bill + 59) // 60]
            if leg != 2:  # an answered call with a customer
                answered.setdefault(dst if kind == 1 else src, []).append(base + t)
        # fmt: off
        out.append((
            uid, linked or uid, seqno, prefix[day] + hms[s],
            prefix[day + end // 86400] + hms[end % 86400], clid, src, dst, DIRECTIONS[kind],
            f"{chan}-{next(chans):08x}", f"{dchan}-{next(chans):08x}" if dchan else "",
            CONTEXTS[leg], APPS[leg], data, "DOCUMENTATION", did, chan, dchan,
            cust, agent and agent[0], agent and agent[2], qname, CODES[kind], STATUSES[st],
            INFO[st][bits(2)], CALL_CODES[kind][st], proj[3], value, comment, mfile, murl,
            rfile, rurl, xfers, proj[0], proj[1], route_id, route_name, qlog, menu, ext,
            ext and "Tichet CRM", details, None, tid, text, bill, ring + bill, ivr, hold, ring,
        ))
        # fmt: on
        return uid

    return emit


def generate(
    engine: Engine, *, calls: int, days: int = 30, seed: int = 1, end: dt.date | None = None
) -> DemoSummary:
    """Write the demo directory and ``calls`` records over ``days`` days ending on ``end``.

    The same arguments always give the same records. Into an empty ``calls`` table the
    records are bulk loaded (indexes built once at the end); into a non-empty one they are
    appended through the indexes, with ids carrying on from the existing ones. The
    directory tables are replaced by the demo's.
    """
    if calls < 0 or days < 1:
        raise ValueError("calls must be >= 0 and days >= 1")
    last = end or dt.date.today()
    dates = [last - dt.timedelta(days=days - 1 - i) for i in range(days)]
    directory = _directory()
    replace_directory(engine, **directory)
    top = select(func.max(calls_table.c.id))
    with engine.connect() as conn:
        before = conn.execute(top).scalar()
    with bulk_load(engine):
        producer = calls >= PROCESS_THRESHOLD and can_fork()
        records = _stream(seed, calls, dates, producer)
        written = insert_call_rows(engine, COLUMNS, records, batch_size=BATCH)
    with engine.connect() as conn:
        first, last_id = conn.execute(
            select(func.min(calls_table.c.id), func.max(calls_table.c.id)).where(
                calls_table.c.id > (before or 0)
            )
        ).one()
    counts = {name: len(rows) for name, rows in directory.items()}
    return DemoSummary(written, dates[0], last, first, last_id, **counts)


def _batches(seed: int, calls: int, dates: list[dt.date]) -> Iterator[list[Row]]:
    """The records of :func:`_records`, :data:`CHUNK` at a time."""
    records = _records(seed, calls, dates)
    while batch := list(islice(records, CHUNK)):
        yield batch


def _stream(seed: int, calls: int, dates: list[dt.date], producer: bool) -> Iterator[Row]:
    """The records of :func:`_records`, made here or by a producer process.

    Making records and inserting them each keep a core busy, so for big runs a second
    process makes them (:func:`cdrapi.producer.produced`: it needs nothing but this
    module's pure functions) while this one inserts; the records are the same either way.
    """
    if not producer:
        yield from _records(seed, calls, dates)
        return
    made = produced(lambda: _batches(seed, calls, dates), what="demo producer process", ahead=16)
    for batch in made:
        yield from batch
