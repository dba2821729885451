"""Which days of calls changed: the dashboard's figures of a day hold until its mark moves.

The dashboard (:mod:`cdrapi.store.dashboard`) keeps each day's figures of a search in
memory and in the store (:mod:`cdrapi.store.dashboard_saved`), each with the marks it was
counted at, and counts again only the days whose calls changed. What changed is told by the
database itself, in the writing transaction, whatever statement wrote (ingestion,
recovery, queue_log and CEL copies, rederive, annotations, code to come):

- ``dashboard_marks`` holds a counter per day (``YYYY-MM-DD``) that rises when a leg of
  that day is written; the row :data:`RESET` rises when legs are deleted (or, on
  PostgreSQL, the table truncated): every day's figures are then read again.
- On SQLite, triggers on ``UPDATE`` (the day before and after) and ``DELETE``; an insert
  is not marked (no cost a line for ingestion): SQLite has one writer at a time and ids
  are given in commit order, so the days of the legs with an id above the one the
  figures were read at are the days that gained legs (:func:`inserted_days`). A deleted
  highest id could be given again: a delete marks :data:`RESET`.
- On PostgreSQL, ids are taken before commit, in no commit order: statement-level
  triggers (one statement of the trigger per statement on ``calls``, over its transition
  table) mark the days of every inserted, updated and deleted leg.

:func:`ensure_marks` creates the table and triggers when they are missing (the first
dashboard read of a store made before them).

The SQLite UPDATE trigger costs some 2 us of CPU per updated leg (an UPDATE of 100,000
legs: 0.41 s against 0.59 s with it); ``ingest rederive`` of 100,000 calls takes some 12 s
with or without it. So it fires on every update: a ``WHEN`` over the columns the figures
and the filters read would have to follow every new filter.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, Engine, String, Table, func, select, text

from cdrapi.store.schema import calls, metadata

__all__ = ["RESET", "dashboard_marks", "ensure_marks", "inserted_days", "read_marks"]

#: The mark that rises when legs are deleted: every day is read again.
RESET = "*"

dashboard_marks = Table(
    "dashboard_marks",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("changes", BigInteger, nullable=False),
)

_BUMP = (
    "INSERT INTO dashboard_marks (day, changes) {rows} "
    "ON CONFLICT (day) DO UPDATE SET changes = dashboard_marks.changes + 1"
)
_SQLITE_TRIGGERS = {
    "dashboard_marks_update": (
        "CREATE TRIGGER IF NOT EXISTS dashboard_marks_update AFTER UPDATE ON calls BEGIN "
        + _BUMP.format(rows="SELECT substr(OLD.time, 1, 10), 1 WHERE true")
        + "; "
        + _BUMP.format(
            rows="SELECT substr(NEW.time, 1, 10), 1 "
            "WHERE substr(NEW.time, 1, 10) IS NOT substr(OLD.time, 1, 10)"
        )
        + "; END"
    ),
    "dashboard_marks_delete": (
        "CREATE TRIGGER IF NOT EXISTS dashboard_marks_delete AFTER DELETE ON calls BEGIN "
        + _BUMP.format(rows=f"SELECT '{RESET}', 1 WHERE true")
        + "; END"
    ),
}
_DAYS = "SELECT DISTINCT substr(time, 1, 10) AS day FROM {source}"
_NEW_DAYS = "SELECT day, 1 FROM (" + _DAYS.format(source="new_rows") + ") d ORDER BY day"
_CHANGED_DAYS = (
    "SELECT day, 1 FROM ("
    + _DAYS.format(source="old_rows")
    + " UNION "
    + _DAYS.format(source="new_rows")
    + ") d ORDER BY day"
)
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION dashboard_mark_days() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_BUMP.format(rows=_NEW_DAYS)};
    ELSIF TG_OP = 'UPDATE' THEN
        {_BUMP.format(rows=_CHANGED_DAYS)};
    ELSE
        {_BUMP.format(rows=f"VALUES ('{RESET}', 1)")};
    END IF;
    RETURN NULL;
END $$
"""
_PG_TRIGGERS = {
    "dashboard_marks_insert": "AFTER INSERT ON calls REFERENCING NEW TABLE AS new_rows",
    "dashboard_marks_update": (
        "AFTER UPDATE ON calls REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "dashboard_marks_delete": "AFTER DELETE ON calls",
    "dashboard_marks_truncate": "AFTER TRUNCATE ON calls",
}


def _present(conn: Connection) -> set[str]:
    if conn.dialect.name == "postgresql":
        found = conn.execute(
            text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'calls'::regclass")
        ).scalars()
    else:
        found = conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'calls'")
        ).scalars()
    return {str(name) for name in found}


def create_marks(conn: Connection) -> None:
    """The table and the triggers that mark it, in ``conn``'s (writing) transaction."""
    dashboard_marks.create(conn, checkfirst=True)
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('dashboard_marks'))"))
        present = _present(conn)
        if set(_PG_TRIGGERS) <= present:
            return
        conn.execute(text(_PG_FUNCTION))
        for name, when in _PG_TRIGGERS.items():
            if name not in present:
                conn.execute(
                    text(
                        f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT "
                        "EXECUTE FUNCTION dashboard_mark_days()"
                    )
                )
    else:
        for statement in _SQLITE_TRIGGERS.values():
            conn.execute(text(statement))


def ensure_marks(engine: Engine) -> None:
    """Create the marks and their triggers if the store has not got them yet."""
    with engine.connect() as conn:
        names = _SQLITE_TRIGGERS if engine.dialect.name == "sqlite" else _PG_TRIGGERS
        if set(names) <= _present(conn):
            return
    with engine.begin() as conn:
        create_marks(conn)


def read_marks(conn: Connection, first: str, last: str) -> dict[str, int]:
    """The marks of the days ``first`` to ``last`` (``YYYY-MM-DD``) and :data:`RESET`; a day
    never marked is absent (0)."""
    m = dashboard_marks.c
    rows = conn.execute(
        select(m.day, m.changes).where((m.day == RESET) | m.day.between(first, last))
    )
    return {str(day): int(changes) for day, changes in rows}


def inserted_days(conn: Connection, after: int) -> dict[str, int]:
    """SQLite: the days of the legs with an id above ``after``, each with its highest id."""
    day = func.substr(calls.c.time, 1, 10)
    rows = conn.execute(select(day, func.max(calls.c.id)).where(calls.c.id > after).group_by(day))
    return {str(found): int(top) for found, top in rows}
