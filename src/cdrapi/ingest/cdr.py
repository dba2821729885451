"""The raw Asterisk CDR as every source hands it to derivation.

Each source (CSV line, SQL row) becomes a tuple of strings in :data:`CDR_FIELDS` order,
``""`` where the source has no such column. Names are Asterisk's own (``cdr.conf``,
FreePBX's ``asteriskcdrdb.cdr``), plus ``dialstatus``/``hangupcause`` that sites often
add with ``CDR(...)`` variables, and what vendor exports add: the trunk a call came in
on (``srctrunk``) or went out on (``dsttrunk``), and the export's own call type
(``calltype``: inbound, outbound, internal...).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

__all__ = [
    "CDR_FIELDS",
    "CDR_INDEX",
    "UNIQUEID",
    "is_datetime",
    "looks_like_uniqueid",
    "source_key",
]

CDR_FIELDS: tuple[str, ...] = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield", "peeraccount", "linkedid", "sequence", "did", "recordingfile",
    "cnum", "cnam", "dialstatus", "hangupcause", "srctrunk", "dsttrunk", "calltype",
)  # fmt: skip

#: Position of each field name in :data:`CDR_FIELDS`.
CDR_INDEX: dict[str, int] = {name: i for i, name in enumerate(CDR_FIELDS)}

#: An Asterisk uniqueid: epoch.counter, optionally behind a ``systemname-`` prefix.
UNIQUEID = re.compile(r"(?:[\w.-]+-)?\d{9,11}\.\d+")


def looks_like_uniqueid(value: str) -> bool:
    return UNIQUEID.fullmatch(value) is not None


def is_datetime(value: str) -> bool:
    """Whether ``value`` starts like ``YYYY-MM-DD HH:MM`` (or with a ``T``)."""
    return (
        len(value) >= 16
        and value[4] == "-"
        and value[7] == "-"
        and value[10] in " T"
        and value[13] == ":"
        and value[:4].isdigit()
    )


_UID, _SEQ = CDR_INDEX["uniqueid"], CDR_INDEX["sequence"]


def source_key(cdr: Sequence[str]) -> str:
    """The CDR's key in the store (``calls.source_key``): its uniqueid and sequence, or a
    digest of the whole CDR when it lacks them (the same CDR read twice stays one call)."""
    uniqueid, sequence = cdr[_UID], cdr[_SEQ]
    if uniqueid and sequence:
        return f"u:{uniqueid}:{sequence}"
    return "h:" + hashlib.blake2b("\x1f".join(cdr).encode(), digest_size=16).hexdigest()
