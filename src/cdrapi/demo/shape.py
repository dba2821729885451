"""The shape of the demo's traffic and the tables a run draws from.

The constants say what calls look like (statuses and their details, kinds of events
and their weights, hours of the day, holidays, number prefixes); :func:`draw_tables`
makes a run's :class:`Tables` with its first draws (records per day, the customers,
their trunks, durations): precomputed tables that a record's draws index with
``getrandbits``, and lookup tables that format times from integer seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from cdrapi.demo import directory
from cdrapi.demo.directory import FIRST, LAST, PROJECTS, QUEUES, ROUTES, TRUNKS, words

__all__ = [
    "COMMENTS", "HOLIDAYS", "INFO", "KIND_WEIGHTS", "LEGS", "PREFIXES", "PUBLIC_URL",
    "SHARE_CALLS", "STATUSES", "TEXTS", "WEEKDAY_HOURS", "WEEKEND_HOURS", "Agent", "Route",
    "Tables", "draw_tables",
]  # fmt: skip


STATUSES = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION")
# (DIALSTATUS, HANGUPCAUSE) variants by status, four each (drawn with getrandbits(2)): the
# CDR variables a FreePBX site adds, from which derivation writes call_status_info
INFO = tuple(
    tuple(tuple(pair.split(":")) for pair in (variants.split() * 4)[:4])
    for variants in (
        "ANSWER:16",
        "NOANSWER:19 CANCEL:16 NOANSWER:16 CANCEL:127",
        "BUSY:17",
        "CHANUNAVAIL:3 CHANUNAVAIL:20 CONGESTION:34 CHANUNAVAIL:1",
        "CONGESTION:34 CONGESTION:38 CONGESTION:42",
    )
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
    map(int, words("2 1 1 1 1 2 5 15 60 100 130 140 110 90 100 110 90 70 20 10 6 4 3 2"))
)
WEEKEND_HOURS = (3, 2, 1, 1, 1, 1, 2, 4, 8, 14, 18, 18, 16, 14, 12, 10, 8, 6, 5, 4, 3, 3, 3, 3)
HOLIDAYS = ((1, 1), (1, 2), (1, 24), (5, 1), (6, 1), (8, 15), (11, 30), (12, 1), (12, 25), (12, 26))
# event kinds: 0 queue, 1 queue + agent not answering, 2 queue + blind transfer,
# 3 queue + attended transfer, 4 reception, 5 outbound, 6 internal
KIND_WEIGHTS = (440, 50, 40, 15, 50, 300, 105)
LEGS = (1, 2, 2, 3, 1, 1, 1)
PREFIXES = words("072 073 074 075 076 077 078 021 031 0264 0232 0256 0268 0241 0364")
PUBLIC_URL = "https://pbx.demo.cdrapi.ro"  # where the demo's recordings are served
#: Calls in a chunk that :func:`cdrapi.demo.records.made` deals to one of several
#: processes (a few hundred: the processes' work evens out within a day).
SHARE_CALLS = 200


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


Agent = tuple[Any, ...]  # id, ext, name, channel, project, details, clid out, clid internal, dial
Route = tuple[Any, ...]  # id, did, name, project, queue members, IVR menu, recording prefix,
#                          queue name, queue app data


@dataclass(frozen=True, slots=True)
class Tables:
    """What a run draws from and formats with, made once by :func:`draw_tables`."""

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
    for user in directory.rows()["users"]:
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


def draw_tables(rnd: Random, calls: int, dates: list[dt.date]) -> Tables:
    """The run's tables: the first draws of ``rnd`` (records per day, customers, their
    trunks, durations), then what needs none."""
    bits = rnd.getrandbits
    per_day, pool = _allocate(rnd, calls, dates), max(50, calls // 6)
    numbers, clids, crm = _customers(rnd, pool)
    trunk_of = _table((5, 3, 2), [t[2] for t in TRUNKS], 4)
    carrier = [trunk_of[bits(4)] for _ in range(pool)]
    two = [f"{n:02d}" for n in range(60)]  # the seconds of a day, joined from their parts
    hms = [hm + sec for hm in [h + ":" + m + ":" for h in two[:24] for m in two] for sec in two]
    compact = [hm + sec for hm in [h + m for h in two[:24] for m in two] for sec in two]
    span = [*dates, *(dates[-1] + dt.timedelta(days=i) for i in (1, 2))]
    agents = _agents()
    routes = _routes(agents)
    hours = [h * 3600 for h in range(24)]
    talk, waits = _skewed(rnd, 12, 8, 170, 3600), _skewed(rnd, 10, 0, 35, 600)
    abandons, rings = _skewed(rnd, 10, 3, 60, 900), _skewed(rnd, 8, 2, 6, 30)
    return Tables(
        per_day=per_day,
        pool=pool,
        numbers=numbers,
        clids=clids,
        crm=crm,
        carrier=carrier,
        trunk_of=trunk_of,
        hms=hms,
        compact=compact,
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
