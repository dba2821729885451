"""The trigram search over the numbers of ``calls``: its creation, upkeep and queries.

Substring search on numbers (``telephone_like``, ``source``, ``destination``) uses a
trigram index: an FTS5 ``trigram`` table (``calls_numbers``) kept in step by triggers on
SQLite, ``pg_trgm`` GIN indexes on PostgreSQL. Both are created by
:func:`create_search_index`; a bulk load suspends the per-row upkeep
(:func:`suspend_search_index`) and indexes each batch with :func:`index_new_rows`. On
SQLite :func:`matching_rows` narrows a search to the rows whose numbers hold its pieces
(LIKE then confirms them); on PostgreSQL ILIKE uses the GIN indexes directly.
"""

from __future__ import annotations

from sqlalchemy import Connection, Select, literal_column, select, table

__all__ = [
    "create_search_index",
    "drop_search_index",
    "index_new_rows",
    "matching_rows",
    "suspend_search_index",
]

# columnsize=0: no table of each row's token counts (calls_numbers_docsize), which only
# ranking reads (a search here only filters): indexing a million calls a batch at a time
# took 4.7 s of CPU with it, 3.2 s without. A store made before keeps the table it has
# until a bulk load into its empty calls makes it again (suspend_search_index).
_SQLITE_SEARCH_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS calls_numbers USING fts5("
    "source, destination, content='calls', content_rowid='id', tokenize='trigram', "
    "columnsize=0)"
)
# Each new row indexed as it is inserted, except during a bulk load (see below).
_SQLITE_SEARCH_INSERT = (
    "CREATE TRIGGER IF NOT EXISTS calls_numbers_ai AFTER INSERT ON calls BEGIN "
    "INSERT INTO calls_numbers(rowid, source, destination) "
    "VALUES (new.id, new.source, new.destination); END"
)
_SQLITE_SEARCH_CHANGES = (
    "CREATE TRIGGER IF NOT EXISTS calls_numbers_ad AFTER DELETE ON calls BEGIN "
    "INSERT INTO calls_numbers(calls_numbers, rowid, source, destination) "
    "VALUES ('delete', old.id, old.source, old.destination); END",
    "CREATE TRIGGER IF NOT EXISTS calls_numbers_au AFTER UPDATE OF source, destination "
    "ON calls BEGIN "
    "INSERT INTO calls_numbers(calls_numbers, rowid, source, destination) "
    "VALUES ('delete', old.id, old.source, old.destination); "
    "INSERT INTO calls_numbers(rowid, source, destination) "
    "VALUES (new.id, new.source, new.destination); END",
)
_SQLITE_SEARCH = (_SQLITE_SEARCH_TABLE, _SQLITE_SEARCH_INSERT, *_SQLITE_SEARCH_CHANGES)

_POSTGRES_SEARCH = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_calls_source_trgm ON calls USING gin (source gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_calls_destination_trgm "
    "ON calls USING gin (destination gin_trgm_ops)",
)


def create_search_index(conn: Connection) -> None:
    """Create the trigram search over ``source``/``destination`` and fill it (or, after
    :func:`suspend_search_index`, index each new row again)."""
    if conn.dialect.name == "sqlite":
        existed = _sqlite_has(conn, "calls_numbers")
        suspended = existed and not _sqlite_has(conn, "calls_numbers_ai")
        for statement in _SQLITE_SEARCH:
            conn.exec_driver_sql(statement)
        if not existed:
            _fts5_setting(conn, "hashsize", _REBUILD_HASHSIZE)
            conn.exec_driver_sql("INSERT INTO calls_numbers(calls_numbers) VALUES ('rebuild')")
            _fts5_setting(conn, "hashsize", _FTS5_HASHSIZE)
        elif suspended:
            _fts5_setting(conn, "automerge", _FTS5_AUTOMERGE)
    elif conn.dialect.name == "postgresql":
        for statement in _POSTGRES_SEARCH:
            conn.exec_driver_sql(statement)


# FTS5's defaults, and ours for filling the search in bulk. ``hashsize``: the bytes of
# terms gathered in memory before a segment is written: 64 MB makes a 'rebuild' of a
# million calls write one segment, not dozens merged again and again (1.4 s, not 2.1 s).
# ``automerge``: how many segments of a level are merged into one: a bulk load writes a
# segment per batch, and merging them 16 at a time, not 4, costs 1.7 us a call, not 2.
_FTS5_HASHSIZE, _REBUILD_HASHSIZE = 1 << 20, 64 << 20
_FTS5_AUTOMERGE, _BULK_AUTOMERGE = 4, 16


def _fts5_setting(conn: Connection, name: str, value: int) -> None:
    conn.exec_driver_sql(
        f"INSERT INTO calls_numbers(calls_numbers, rank) VALUES ('{name}', {int(value)})"
    )


def _sqlite_has(conn: Connection, name: str) -> bool:
    found = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = ?", (name,))
    return found.first() is not None


def drop_search_index(conn: Connection) -> None:
    """Drop the trigram search."""
    if conn.dialect.name == "sqlite":
        for trigger in ("calls_numbers_ai", "calls_numbers_ad", "calls_numbers_au"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.exec_driver_sql("DROP TABLE IF EXISTS calls_numbers")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_calls_source_trgm")
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_calls_destination_trgm")


def suspend_search_index(conn: Connection) -> None:
    """Before a bulk load into an empty ``calls``: stop indexing rows one by one.

    On PostgreSQL the trigram indexes are dropped (:func:`create_search_index` builds
    them again). On SQLite the (empty) search table is made anew, and the trigger that
    indexes each inserted row goes: the writers index each batch's rows with one
    statement instead (:func:`index_new_rows`), in the batch's transaction, so the search
    always covers exactly the stored rows, a crash included, and
    :func:`create_search_index` then only puts the trigger back. A million calls take 16 s
    to index through the trigger, 1.7 s a batch at a time (while the next batch is
    parsed), 1.4 s all at once after the load (when nothing else runs).
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TABLE IF EXISTS calls_numbers")  # empty: made anew
        for statement in (_SQLITE_SEARCH_TABLE, *_SQLITE_SEARCH_CHANGES):
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS calls_numbers_ai")
        _fts5_setting(conn, "automerge", _BULK_AUTOMERGE)
    else:
        drop_search_index(conn)


def index_new_rows(conn: Connection, first_id: int) -> None:
    """Add the rows from id ``first_id`` on to the search, unless they are already there
    (the insert trigger is in place but for a bulk load: :func:`suspend_search_index`).

    Call it in the transaction that inserted the rows, right after the insert.
    """
    if conn.dialect.name == "sqlite" and not _sqlite_has(conn, "calls_numbers_ai"):
        conn.exec_driver_sql(
            "INSERT INTO calls_numbers(rowid, source, destination) "
            "SELECT id, source, destination FROM calls WHERE id >= ?",
            (first_id,),
        )


_FTS = table("calls_numbers", literal_column("rowid"))


def _fts_phrase(pieces: list[str], columns: str) -> str | None:
    """An FTS5 query that every matching row satisfies, or None if too short to help."""
    usable = [piece for piece in pieces if len(piece) >= 3]
    if not usable:
        return None
    phrases = " AND ".join('"' + piece.replace('"', '""') + '"' for piece in usable)
    return f"{{{columns}}} : ({phrases})"


def matching_rows(pieces: list[str], columns: str) -> Select[tuple[int]] | None:
    """On SQLite, the ids of the calls whose ``columns`` (names, space-separated) hold
    every literal piece of a search, or None when no piece is long enough to narrow it."""
    phrase = _fts_phrase(pieces, columns)
    if phrase is None:
        return None
    return (
        select(literal_column("rowid"))
        .select_from(_FTS)
        .where(literal_column("calls_numbers").op("MATCH")(phrase))
    )
