"""Checkpoints: where each source stopped, saved with the rows it covers.

A source (a file, a PBX table) is known by its name (``csv:/var/log/...``,
``db:mysql://...#cdr``); its position is text only the source understands (JSON).
:func:`save_checkpoint` runs inside the transaction that stores the rows read up to that
position (:func:`cdrapi.store.calls.write_batch`), so a crash loses and doubles nothing.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from cdrapi.store.schema import checkpoints

__all__ = ["read_checkpoint", "save_checkpoint"]


def save_checkpoint(conn: Connection, source: str, position: str) -> None:
    """Store ``position`` for ``source`` inside the caller's transaction."""
    dialect = pg_dialect if conn.dialect.name == "postgresql" else sqlite_dialect
    statement = dialect.insert(checkpoints).values(source=source, position=position)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[checkpoints.c.source], set_={"position": position}
        )
    )


def read_checkpoint(engine: Engine, source: str) -> str | None:
    """The position last saved for ``source``, or ``None``."""
    with engine.connect() as conn:
        found = conn.execute(
            select(checkpoints.c.position).where(checkpoints.c.source == source)
        ).scalar()
    return None if found is None else str(found)
