"""Opening a store: database URLs, connection settings and the schema.

``sqlite:///path`` (the default, in WAL mode) and ``postgresql://...`` (through psycopg 3)
are supported. Driver errors met while opening are raised as :class:`StoreError`.

A SQLite file is created once, by :func:`connect`, and from then on opened with
``mode=rw``: a connection opened after the file was deleted fails instead of silently
creating a new, empty database at the path. Every connection remembers which file (device
and inode) it opened, and is discarded when it is checked out after the path came to name
another file or none: all of an engine's connections read the same file, so answers do not
flap between an old file and a new one (see :func:`store_generation`).
"""

from __future__ import annotations

import os
import weakref
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, make_url, select, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from cdrapi.store.schema import meta, metadata
from cdrapi.store.search import create_search_index

__all__ = [
    "StoreError",
    "bump_version",
    "connect",
    "create_schema",
    "driver_rows",
    "read_version",
    "store_generation",
]

_FILE_KEY = "cdrapi.file"


def driver_rows(conn: Connection, sql: str, params: Any) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` as the database driver gives them (plain tuples, no SQLAlchemy
    row objects: the reads that return many rows), on ``conn``'s own driver connection."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


class StoreError(Exception):
    """The database could not be opened or used."""


def normalize_url(url: str) -> str:
    """Map the user-facing URL schemes onto SQLAlchemy driver names."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's begin() issue a real BEGIN (below), so a read sees one snapshot.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=10000",
        "cache_size=-65536",
        "mmap_size=1073741824",
        "temp_store=MEMORY",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


class _SqliteFile:
    """The one file all of an engine's connections must have open."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.seen: tuple[int, int] | None = None
        self.generation = 0

    def identity(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_dev, stat.st_ino

    def opened(self, _dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        found = self.identity()
        record.info[_FILE_KEY] = found
        if found != self.seen:
            if self.seen is not None:
                self.generation += 1
            self.seen = found

    def checkout(
        self, _dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        if record.info.get(_FILE_KEY) != self.identity():
            self.generation += 1  # the file may come back with the same inode: count it now
            # The pool closes this connection and opens another: on the file now at the
            # path, or failing (``mode=rw``) if there is none.
            raise DisconnectionError(f"{self.path} is no longer the file this connection read")


_FILES: weakref.WeakKeyDictionary[Engine, _SqliteFile] = weakref.WeakKeyDictionary()


def store_generation(engine: Engine) -> int:
    """How many times the engine's SQLite file was seen deleted or replaced (0 otherwise).

    Whatever was learned from the store (cached counts, page boundaries) is stale when
    this number changes, even if the new file's ``read_version`` is the same.
    """
    watched = _FILES.get(engine)
    return watched.generation if watched is not None else 0


def _sqlite_path(url: URL) -> str | None:
    """The file a plain ``sqlite:///path`` URL names (None for memory and ``file:`` URIs)."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:") or "uri" in url.query:
        return None
    return os.path.abspath(database)


def _read_write(url: URL, path: str, create: bool) -> URL:
    """``url`` opening the file at ``path`` with ``mode=rw``, after creating it if allowed
    (if not, a missing file makes each use of the engine fail until the file is there)."""
    if create and not os.path.exists(path):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))  # an empty SQLite file
        except OSError as exc:
            raise StoreError(f"cannot create database {path}: {exc.strerror}") from exc
    return url.set(database=f"file:{quote(path)}", query={**url.query, "mode": "rw", "uri": "true"})


def connect(url: str, *, create: bool = True) -> Engine:
    """Return an engine for ``url``, creating the schema when ``create`` is true.

    A SQLite file that does not exist is created only when ``create`` is true; without it
    the engine's connections fail (``unable to open database file``) until there is one.
    """
    try:
        parsed = make_url(normalize_url(url))
        path = _sqlite_path(parsed)
        if path is not None:
            parsed = _read_write(parsed, path, create)
        engine = create_engine(parsed, pool_pre_ping=parsed.get_backend_name() != "sqlite")
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot use database URL {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        if path is not None:
            watched = _SqliteFile(path)
            _FILES[engine] = watched
            event.listen(engine, "connect", watched.opened)
            event.listen(engine, "checkout", watched.checkout)
    elif engine.dialect.name != "postgresql":
        raise StoreError(f"unsupported database {engine.dialect.name!r}: use sqlite or postgresql")
    if create:
        from cdrapi.store.diskfull import AGAIN, reporting_full_disk  # (it imports this)

        try:
            with reporting_full_disk(engine, "creating the store's tables", AGAIN):
                create_schema(engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database {url!r}: {exc}") from exc
    return engine


def create_schema(engine: Engine) -> None:
    """Create the tables, indexes and trigram search if they are missing."""
    from cdrapi.store import (
        annotations,  # noqa: F401  (it imports this; registers its table)
        dashboard_saved,  # noqa: F401  (registers dashboard_days)
    )
    from cdrapi.store.dashboard_marks import create_marks  # (it imports schema, as this does)

    with engine.begin() as conn:
        metadata.create_all(conn)
        create_marks(conn)  # the days the dashboard must read again, marked as calls change
        create_search_index(conn)
        if conn.execute(select(meta.c.value).where(meta.c.key == "version")).first() is None:
            conn.execute(meta.insert().values(key="version", value=0))


def read_version(conn: Connection) -> int:
    """The store's write counter: it changes whenever ``calls`` changes."""
    value = conn.execute(select(meta.c.value).where(meta.c.key == "version")).scalar_one()
    return int(value)


def bump_version(conn: Connection) -> None:
    """Mark a write to ``calls``; call it inside the writing transaction."""
    conn.execute(update(meta).where(meta.c.key == "version").values(value=meta.c.value + 1))
