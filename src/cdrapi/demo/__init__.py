"""Synthetic PBX traffic of a Romanian call centre, for demos, tests and benchmarks.

:func:`generate` writes a small directory (projects, agents, queues, trunks, inbound
routes) and ``calls`` records spread over a span of days in business-hours rhythm:
inbound calls through queues (some abandoned, some ringing an agent who does not answer,
some transferred), direct calls to reception, outbound calls to a pool of customers
(some calling back a missed caller, which makes ``is_recovered`` meaningful), and
internal calls. Output is a pure function of the arguments: one ``random.Random(seed)``
drives everything, and records are written in time order.

The PBX's side is what Asterisk writes: a raw CDR per leg, the call's CEL events and
queue_log lines (:mod:`cdrapi.demo.events`); the records are derived from them by
ingestion's own code (:mod:`cdrapi.demo.derivation`: the CDR deriver, queue_log and CEL
derivation, recovery), so ``ivr_log``, ``transfers``, ``monitor_files``, ring and hold
times read as a real PBX's do. Only what no PBX log holds (CRM ids, comments, costs,
transcriptions) is drawn directly. Those PBX logs can be written as Asterisk's files
too (:mod:`cdrapi.demo.files`, ``cdrapi demo --write-files``).

It is built for speed: making and deriving a call costs some 75 us of CPU, inserting it
some 35, so big runs (:data:`PROCESS_THRESHOLD`) use two producer processes, each
making and deriving every other chunk of calls, while this one puts them in order
(:mod:`cdrapi.demo.days`), marks recovery and bulk loads the store (300,000 calls: about
15 s of CPU in each of the three processes). Draws come from precomputed tables, times
are integer seconds formatted from lookup tables, rows are tuples, and the store is bulk
loaded with its indexes built once at the end.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine, func, select

from cdrapi.demo import directory
from cdrapi.demo.days import in_order
from cdrapi.demo.records import DEMO_COLUMNS, Pbx, Row, made, records
from cdrapi.producer import can_fork, produced
from cdrapi.store.bulk import bulk_load
from cdrapi.store.calls import insert_call_rows
from cdrapi.store.directory import replace_directory
from cdrapi.store.schema import calls as calls_table

__all__ = ["DemoSummary", "generate"]


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


# From this many calls on (and with a second CPU), producer processes make the records
# while this one inserts them.
PROCESS_THRESHOLD = 20_000
SHARES = 2  # producer processes, each making every other chunk of calls
AHEAD = 64  # chunks a producer process may have made and not sent
BATCH = 25_000  # records per transaction: fewer commits and WAL checkpoints than the default


def generate(
    engine: Engine,
    *,
    calls: int,
    days: int = 30,
    seed: int = 1,
    end: dt.date | None = None,
    pbx: Pbx | None = None,
) -> DemoSummary:
    """Write the demo directory and ``calls`` records over ``days`` days ending on ``end``.

    The same arguments always give the same records. Into an empty ``calls`` table the
    records are bulk loaded (indexes built once at the end); into a non-empty one they are
    appended through the indexes, with ids carrying on from the existing ones. The
    directory tables are replaced by the demo's. ``pbx`` also gets each call's CDRs, CEL
    events and queue_log lines (:class:`cdrapi.demo.files.PbxFiles` writes them as
    Asterisk does), in the process that makes them.
    """
    if calls < 0 or days < 1:
        raise ValueError("calls must be >= 0 and days >= 1")
    last = end or dt.date.today()
    dates = [last - dt.timedelta(days=days - 1 - i) for i in range(days)]
    tables = directory.rows()
    replace_directory(engine, **tables)
    top = select(func.max(calls_table.c.id))
    with engine.connect() as conn:
        before = conn.execute(top).scalar()
    # Inserting makes no reference cycles worth collecting, and the collector's passes
    # over the rows cost a quarter of the CPU of putting them in order: off meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with bulk_load(engine):
            producer = calls >= PROCESS_THRESHOLD and can_fork()
            records = _stream(seed, calls, dates, producer, pbx)
            written = insert_call_rows(engine, DEMO_COLUMNS, records, batch_size=BATCH)
    finally:
        if collecting:
            gc.enable()
    with engine.connect() as conn:
        first, last_id = conn.execute(
            select(func.min(calls_table.c.id), func.max(calls_table.c.id)).where(
                calls_table.c.id > (before or 0)
            )
        ).one()
    counts = {name: len(rows) for name, rows in tables.items()}
    return DemoSummary(written, dates[0], last, first, last_id, **counts)


def _stream(
    seed: int, calls: int, dates: list[dt.date], producer: bool, pbx: Pbx | None = None
) -> Iterator[Row]:
    """The records of :func:`~cdrapi.demo.records.records`, made here or by producer processes.

    Making and deriving the calls costs several times what inserting them does, so for
    big runs two producer processes (:func:`cdrapi.producer.produced`: they need nothing
    but this module's pure functions) each make and derive every other chunk of calls
    (:func:`~cdrapi.demo.records.made`) while this one puts them in order, marks the
    recovered calls and inserts them; the records are the same either way. ``pbx`` is
    the first producer's: it makes the PBX's logs of every call (and derives its own).
    """
    if not producer:
        return records(seed, calls, dates, pbx)
    shares = [
        produced(
            partial(made, seed, calls, dates, None if share else pbx, share, SHARES),
            what="demo producer process",
            ahead=AHEAD,
            collect_cycles=False,
        )
        for share in range(SHARES)
    ]
    return in_order(shares)
