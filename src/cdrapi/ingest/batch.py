"""A batch: rows read from a source, what to change with them, and where the source is
after them; :func:`commit` stores it in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, update

from cdrapi.ingest.derive import ROW_COLUMNS
from cdrapi.ingest.errors import Reject
from cdrapi.ingest.rejects import RejectFile
from cdrapi.ingest.summary import Summary
from cdrapi.store.schema import calls
from cdrapi.store.writer import write_batch

__all__ = ["Batch", "Summary", "commit"]


@dataclass
class Batch:
    """Rows (tuples of ``ROW_COLUMNS``) and rejects of some lines, earlier rows found
    recovered, and the checkpoint (source, position) after the lines."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    checkpoint: tuple[str, str] | None = None
    lines: int = 0
    events: list[tuple[Any, ...]] = field(default_factory=list)  # queue_log events
    # (number, window start, time) of answered calls, for missed calls stored earlier
    callbacks: list[tuple[str, str, str]] = field(default_factory=list)
    # lines stored but worth a look (broken quoting in a caller id...), reported like rejects
    warnings: list[Reject] = field(default_factory=list)
    # how the direction of each row was decided: sign -> rows (Deriver.take_signs)
    directions: dict[str, int] = field(default_factory=dict)


_CALLED_BACK = (
    update(calls)
    .where(
        calls.c.source == bindparam("number"),
        calls.c.time >= bindparam("since"),
        calls.c.time < bindparam("until"),
        calls.c.direction == "IN",
        calls.c.is_recovered == 0,
    )
    .values(is_recovered=1)
)
_MARK = (
    update(calls)
    .where(calls.c.source_key == bindparam("key"), calls.c.is_recovered == 0)
    .values(is_recovered=1)
)

# The same, straight to sqlite3: a million calls mark about 60,000 earlier ones, and
# SQLAlchemy's parameter handling made that 0.2 s.
_MARK_SQLITE = "UPDATE calls SET is_recovered = 1 WHERE source_key = ? AND is_recovered = 0"


def commit(
    engine: Engine,
    batch: Batch,
    rejects: RejectFile,
    after: Callable[[Connection, int, Batch], None] | None = None,
) -> int:
    """Write ``batch``'s rejects, then its rows, recoveries and checkpoint in one
    transaction (``after(conn, first_id, batch)`` runs in it too); return the new rows."""
    rejects.write(batch.rejects)

    def then(conn: Connection, first_id: int) -> None:
        if batch.recovered and conn.dialect.name == "sqlite":  # the driver's executemany
            conn.exec_driver_sql(_MARK_SQLITE, [(key,) for key in batch.recovered])
        elif batch.recovered:
            conn.execute(_MARK, [{"key": key} for key in batch.recovered])
        if batch.callbacks:
            conn.execute(
                _CALLED_BACK,
                [{"number": n, "since": lo, "until": hi} for n, lo, hi in set(batch.callbacks)],
            )
        if after is not None:
            after(conn, first_id, batch)

    return write_batch(engine, ROW_COLUMNS, batch.rows, checkpoint=batch.checkpoint, then=then)
