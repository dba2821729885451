"""Deriving the fields of stored calls again, after the directory or settings changed.

Every ingested call (one with a ``source_key``; the demo's records are left alone) is
rebuilt from the raw Asterisk columns kept in the store, in time order, with the current
directory, recordings and recovery window; queue_log fields are copied again. Each chunk
of calls is one transaction. Ids do not change.

The direction: some of the signs that decided it at ingestion are not stored (a vendor
export's trunk names and call type, and which legs of a call came first in the file), so
the stored direction stands in for them: it is handed to the deriver as the CDR's call
type (sign 3 of :mod:`cdrapi.ingest.direction`, counted as ``stored``). Configured trunks
(``[[trunks]]``) still decide first, and a ``did`` still means IN, as they did at
ingestion; every other sign comes after the call type, so a direction is only guessed
again for a call stored without one.

The store reads the calls and rewrites them (:class:`~cdrapi.store.writer.Writer`'s
``ingested_calls``, ``rewrite_derived`` and ``copy_all_queue_fields``); this module
names the columns and derives the values. A field set by an annotation (``POST
/api/cdr/annotate``) keeps its value: the store's ``rewrite_derived`` never writes over it.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine

from cdrapi.ingest.cdr import CDR_FIELDS, CDR_INDEX
from cdrapi.ingest.row import ROW_FIELDS
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.summary import Summary

__all__ = ["rederive"]

# Raw CDR field -> stored column it is kept in.
_KEPT = {
    "accountcode": "accounting_code", "src": "source", "dst": "destination",
    "dcontext": "dcontext", "clid": "caller_id", "channel": "channel",
    "dstchannel": "dstchannel", "lastapp": "lastapp", "lastdata": "lastdata", "start": "time",
    "end": "time_end", "duration": "duration", "billsec": "billsec",
    "disposition": "call_status", "amaflags": "amaflags", "uniqueid": "uniqueid",
    "userfield": "userfield", "peeraccount": "peeraccount", "linkedid": "linkedid",
    "sequence": "sequence", "did": "did", "recordingfile": "recording_file",
    "calltype": "direction",  # the stored direction, for the signs not stored (see above)
}  # fmt: skip
#: The stored columns a call is derived again from (``source_key`` comes after them).
_READ = ("id", "call_status_info", *_KEPT.values())
#: The columns rederive rewrites.
DERIVED = (
    "direction", "channel_formatted", "dstchannel_formatted", "user_id", "user_fullname",
    "qname", "code", "call_codes", "recording_file", "recording_url", "project_id", "project",
    "inbound_route_id", "inbound_route", "is_recovered", "ring_time",
)  # fmt: skip
_POSITIONS = [ROW_FIELDS.index(name) for name in DERIVED]
CHUNK = 5000


def _raw(row: Any) -> list[str]:
    cdr = [""] * len(CDR_FIELDS)
    for field, value in zip(_KEPT, row[2 : 2 + len(_KEPT)], strict=True):
        cdr[CDR_INDEX[field]] = "" if value is None else str(value)
    if cdr[CDR_INDEX["disposition"]] == "":
        cdr[CDR_INDEX["disposition"]] = "FAILED"
    info = dict(part.split(":", 1) for part in (row[1] or "").split("|") if ":" in part)
    if info.get("HC") or info.get("DS"):
        cdr[CDR_INDEX["dialstatus"]], cdr[CDR_INDEX["hangupcause"]] = (
            info.get("DS", ""),
            info.get("HC", ""),
        )
    return cdr


def rederive(engine: Engine, options: IngestRun | None = None) -> Summary:
    """Derive every ingested call's fields again; return how many were rewritten."""
    options = options or IngestRun()
    started = time.perf_counter()
    store = options.prepare(engine)
    deriver = options.deriver()
    recovery = options.recovery(in_store=False)
    summary = Summary()
    after: tuple[str, int] | None = None
    while stored := store.ingested_calls(_READ, after, CHUNK):
        rows = []
        for row in stored:
            derived = list(deriver.row(_raw(row)))
            derived[0] = row.source_key
            rows.append(tuple(derived))
        for sign, count in deriver.take_signs().items():
            summary.directions["stored" if sign == "call-type" else sign] += count
        cleared: list[str] = []
        earlier = recovery.track(rows, cleared=cleared)
        store.rewrite_derived(
            DERIVED,
            [(row.id, [new[i] for i in _POSITIONS]) for row, new in zip(stored, rows, strict=True)],
            recovered=earlier,
            cleared=cleared,
        )
        summary.lines += len(rows)
        summary.updated += len(rows)
        after = (stored[-1].time, stored[-1].id)
    store.copy_all_queue_fields()
    summary.seconds = time.perf_counter() - started
    return summary
