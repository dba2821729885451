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

The CRM fields of ``[fields]`` (:mod:`cdrapi.ingest.crm_fields`) are derived again from the
raw columns the store keeps as they were read (:data:`AS_READ`: ``userfield``,
``accountcode``, ``dcontext``, ``did``...), so a pattern added or changed later applies to
the calls stored before; a field mapped from a column the store does not keep (an extra
CSV or SQL column) keeps its stored value, as does one whose new value cannot be stored
(said as a warning, per call).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from cdrapi.ingest.cdr import CDR_FIELDS, CDR_INDEX
from cdrapi.ingest.crm_fields import FieldMap
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
#: The raw CDR fields the store keeps as they were read: ``[fields]`` is applied to them again.
AS_READ = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "uniqueid", "userfield", "peeraccount", "did",
)  # fmt: skip
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


def _crm_values(
    fields: FieldMap, names: Sequence[str], raw: list[str], row: Any, summary: Summary
) -> list[str | None]:
    """The values of the CRM fields ``names`` for the stored call ``row``; one that
    cannot be stored keeps the stored value (and is said)."""
    out = []
    for name in names:
        try:
            out.append(fields.value(name, raw))
        except ValueError as exc:
            out.append(getattr(row, name))
            summary.warnings.append(f"call {row.id}: {exc}; its {name} stays as it was")
    return out


def rederive(engine: Engine, options: IngestRun | None = None) -> Summary:
    """Derive every ingested call's fields again; return how many were rewritten."""
    options = options or IngestRun()
    started = time.perf_counter()
    store = options.prepare(engine)
    deriver = options.deriver(crm=False)
    fields = options.fields()
    crm = fields.from_columns(AS_READ) if fields is not None else ()
    recovery = options.recovery(in_store=False)
    summary = Summary()
    after: tuple[str, int] | None = None
    while stored := store.ingested_calls((*_READ, *crm), after, CHUNK):
        rows, mapped = [], []
        for row in stored:
            raw = _raw(row)
            derived = list(deriver.row(raw))
            derived[0] = row.source_key
            rows.append(tuple(derived))
            if fields is not None and crm:
                mapped.append(_crm_values(fields, crm, raw, row, summary))
        for sign, count in deriver.take_signs().items():
            summary.directions["stored" if sign == "call-type" else sign] += count
        cleared: list[str] = []
        earlier = recovery.track(rows, cleared=cleared)
        changes = [
            (row.id, [new[i] for i in _POSITIONS]) for row, new in zip(stored, rows, strict=True)
        ]
        if mapped:
            changes = [
                (id_, [*new, *values]) for (id_, new), values in zip(changes, mapped, strict=True)
            ]
        store.rewrite_derived(
            (*DERIVED, *crm) if mapped else DERIVED,
            changes,
            recovered=earlier,
            cleared=cleared,
        )
        summary.lines += len(rows)
        summary.updated += len(rows)
        after = (stored[-1].time, stored[-1].id)
    store.copy_all_queue_fields()
    summary.seconds = time.perf_counter() - started
    return summary
