"""The query planner's statistics on ``calls``, kept right after every index build.

SQLite plans from ``sqlite_stat1``, which only ``ANALYZE`` writes and ``DROP INDEX``
empties. Without it, every index looks as selective as every other, and the planner may
pick ``ix_calls_direction`` (three values) over ``ix_calls_source`` for an ``UPDATE``
keyed by number, direction and time: a scan of most of the table per statement. An
import that was interrupted after its bulk load dropped the indexes (killed, or a full
disk) left exactly that behind: the next run rebuilt the indexes without statistics and
stored 923 lines in 120 s instead of about 78,000 a second.

So whatever builds indexes ends with :func:`refresh`, and the start of every import calls
:func:`refresh_if_missing`, which costs a few index lookups unless statistics are
really missing (a store left so by an older version heals on its next run). On
PostgreSQL ``ANALYZE calls`` does the same for the table's columns (autovacuum keeps
them fresh afterwards).
"""

from __future__ import annotations

from sqlalchemy import Connection

from cdrapi.store.schema import SECONDARY_INDEXES

__all__ = ["SAMPLE", "refresh", "refresh_if_missing"]

#: Index entries SQLite's ``ANALYZE`` reads per index (``PRAGMA analysis_limit``): enough
#: to tell a selective index from an unselective one, in about 0.1 s whatever the size.
SAMPLE = 1000

#: Statistics taken when ``calls`` had a tenth of its rows or fewer are taken again.
_GROWTH = 10


def refresh(conn: Connection) -> None:
    """Gather the planner's statistics afresh (on SQLite from a sample of each index)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE calls")
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA analysis_limit={SAMPLE}")
        conn.exec_driver_sql("ANALYZE")
        conn.exec_driver_sql("PRAGMA analysis_limit=0")


def refresh_if_missing(conn: Connection) -> bool:
    """:func:`refresh` when ``calls`` has rows but no usable statistics; return whether.

    On SQLite: a secondary index without its ``sqlite_stat1`` row, or statistics taken
    when the table had under a tenth of its rows. On PostgreSQL: a table never analysed.
    """
    if _missing(conn):
        refresh(conn)
        return True
    return False


def _missing(conn: Connection) -> bool:
    top = conn.exec_driver_sql("SELECT max(id) FROM calls").scalar()
    if top is None:  # empty: nothing to measure (ANALYZE would write no rows)
        return False
    if conn.dialect.name == "postgresql":
        tuples = conn.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE oid = 'calls'::regclass"
        ).scalar()
        return tuples is None or float(tuples) < 0  # -1: never vacuumed nor analysed
    if conn.dialect.name != "sqlite":
        return False
    has_table = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).first()
    if has_table is None:
        return True
    stats = conn.exec_driver_sql("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'calls'")
    found = {str(name): str(stat) for name, stat in stats}
    if any(index.name not in found for index in SECONDARY_INDEXES):
        return True
    rows = found[str(SECONDARY_INDEXES[0].name)].split(" ", 1)[0]  # ix_calls_time
    return not rows.isdigit() or int(top) > _GROWTH * int(rows)
