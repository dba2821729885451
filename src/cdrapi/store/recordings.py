"""The store's statements on the calls' recording files: whose a file is, and which to make.

- :func:`recorded_by` answers whether a call that some filters let through (a scoped API
  token's, a web account's) has ``path`` as its ``recording_file`` or as one of its
  ``monitor_files``: the server serves a scoped token only the recordings of its calls.
- :func:`recordings_since` lists the recording files of the calls from a given time on,
  with their talk time (the demo writes audio for them).

``monitor_files`` may name several files: separated by commas, semicolons, bars or line
breaks (:func:`monitor_paths`). ``recording_file`` has no index; a recording's name carries
its call's ``uniqueid`` as Asterisk and FreePBX name them (``in-DST-SRC-DATE-TIME-UNIQUEID``,
``${UNIQUEID}.wav``), so :func:`recorded_by` looks first among the calls whose uniqueid or
linkedid the path contains (their indexes), and reads the calls in scope only for a path
whose owner is not among them (a name without a uniqueid, a file no call names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, and_, case, or_, select, true
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.protocol.filters import CallFilters
from cdrapi.store.engine import StoreError
from cdrapi.store.queries import where_clauses
from cdrapi.store.schema import calls

__all__ = ["monitor_paths", "recorded_by", "recordings_since"]

#: A uniqueid in a file name: epoch seconds, a dot, a sequence number.
_UNIQUEID = re.compile(r"(?<![0-9])[0-9]{9,11}\.[0-9]{1,10}(?![0-9])")
_SEPARATORS = re.compile(r"[,;|\r\n]+")
_HINTS = 20  # uniqueids looked up at most (a path is a few hundred characters)


def monitor_paths(value: str | None) -> list[str]:
    """The files a ``monitor_files`` value names, in order."""
    if not value:
        return []
    return [part.strip() for part in _SEPARATORS.split(value) if part.strip()]


def _naming(rows: Iterable[Any], path: str) -> list[Any]:
    """The rows whose recording or monitor files include ``path``."""
    return [row for row in rows if row[0] == path or path in monitor_paths(row[1])]


def recorded_by(engine: Engine, path: str, filters: CallFilters) -> bool:
    """Whether a call ``filters`` match (a scope: ``ScopedCallFilters``) has ``path``
    as its recording or one of its monitor files. Raises
    :class:`~cdrapi.store.engine.StoreError` if the store cannot be read.

    The calls whose uniqueid or linkedid the path names are read first, in scope or not:
    if one of them names the path, the answer is whether one such call is in scope (a
    recording of another project is refused without reading further). Otherwise the
    calls in scope that mention the path are read.
    """
    if not path:
        return False
    where = where_clauses(filters, engine.dialect.name)
    mentions = or_(
        calls.c.recording_file == path,
        calls.c.monitor_files.contains(path, autoescape=True),
    )
    hints = list(dict.fromkeys(_UNIQUEID.findall(path)))[:_HINTS]
    try:
        with engine.connect() as conn:
            if hints:
                named = or_(calls.c.uniqueid.in_(hints), calls.c.linkedid.in_(hints))
                in_scope = case((and_(true(), *where), 1), else_=0)
                hinted = select(calls.c.recording_file, calls.c.monitor_files, in_scope)
                owners = _naming(conn.execute(hinted.where(named, mentions)), path)
                if owners:
                    return any(row[2] for row in owners)
            scoped = select(calls.c.recording_file, calls.c.monitor_files).where(*where, mentions)
            return bool(_naming(conn.execute(scoped), path))
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {exc.__class__.__name__}") from exc


def recordings_since(engine: Engine, start: str) -> list[tuple[str, int]]:
    """``(path, billsec)`` of every recording and monitor file of the calls from ``start``
    (``YYYY-MM-DD HH:MM:SS``, as call times are stored) on, each path once, oldest first."""
    query = (
        select(calls.c.recording_file, calls.c.monitor_files, calls.c.billsec)
        .where(calls.c.time >= start)
        .where(or_(calls.c.recording_file.is_not(None), calls.c.monitor_files.is_not(None)))
        .order_by(calls.c.time, calls.c.id)
    )
    found: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            for recording, monitors, billsec in conn.execute(query):
                for path in [recording or "", *monitor_paths(monitors)]:
                    if path:
                        found.setdefault(path, int(billsec or 0))
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {exc.__class__.__name__}") from exc
    return list(found.items())
