"""The derived row: what :class:`cdrapi.ingest.derive.Deriver` makes of one raw CDR.

:class:`Row` names its fields, in the order of the ``calls`` columns ingestion writes.
Derivation builds plain tuples in this order (a NamedTuple costs a Python call per row
to build, and plain tuples cross the producer process by ``marshal``, which takes no
subclasses); ``Row._make(row)`` reads one by name where speed does not matter, and the
hot readers (:mod:`cdrapi.ingest.recovery`) use the positions below, all taken from
:class:`Row`.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "CALL_CODES",
    "CHANNEL",
    "DESTINATION",
    "DIRECTION",
    "DSTCHANNEL",
    "KEY",
    "LINKEDID",
    "RECOVERED",
    "ROW_FIELDS",
    "SOURCE",
    "STATUS",
    "TIME",
    "Row",
]


class Row(NamedTuple):
    """One derived ``calls`` row (see :mod:`cdrapi.ingest.derive` for each field)."""

    source_key: str
    uniqueid: str
    linkedid: str
    sequence: int | None
    time: str
    time_end: str
    caller_id: str
    source: str
    destination: str
    direction: str
    channel: str
    dstchannel: str
    dcontext: str
    lastapp: str
    lastdata: str
    amaflags: str
    userfield: str | None
    peeraccount: str | None
    did: str | None
    channel_formatted: str
    dstchannel_formatted: str
    user_id: int | None
    user_fullname: str | None
    qname: str | None
    code: str
    call_status: str
    call_status_info: str
    call_codes: str
    accounting_code: str | None
    recording_file: str | None
    recording_url: str | None
    project_id: int | None
    project: str | None
    inbound_route_id: int | None
    inbound_route: str | None
    is_recovered: int | None
    billsec: int
    duration: int
    ring_time: int


#: The field names, in order (the ``calls`` columns a derived row fills).
ROW_FIELDS: tuple[str, ...] = Row._fields

_AT = ROW_FIELDS.index
KEY, LINKEDID, TIME, SOURCE, DESTINATION = (
    _AT("source_key"), _AT("linkedid"), _AT("time"), _AT("source"), _AT("destination")
)  # fmt: skip
DIRECTION, CHANNEL, DSTCHANNEL = _AT("direction"), _AT("channel"), _AT("dstchannel")
STATUS, CALL_CODES, RECOVERED = _AT("call_status"), _AT("call_codes"), _AT("is_recovered")
