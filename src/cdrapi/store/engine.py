"""Opening a store: database URLs, connection settings and the schema.

``sqlite:///path`` (the default, in WAL mode) and ``postgresql://...`` (through psycopg 3)
are supported. Driver errors met while opening are raised as :class:`StoreError`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from cdrapi.store.schema import create_search_index, meta, metadata

__all__ = ["StoreError", "bump_version", "connect", "create_schema", "read_version"]


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


def connect(url: str, *, create: bool = True) -> Engine:
    """Return an engine for ``url``, creating the schema when ``create`` is true."""
    try:
        engine = create_engine(normalize_url(url), pool_pre_ping=not url.startswith("sqlite"))
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot use database URL {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    elif engine.dialect.name != "postgresql":
        raise StoreError(f"unsupported database {engine.dialect.name!r}: use sqlite or postgresql")
    if create:
        try:
            create_schema(engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database {url!r}: {exc}") from exc
    return engine


def create_schema(engine: Engine) -> None:
    """Create the tables, indexes and trigram search if they are missing."""
    with engine.begin() as conn:
        metadata.create_all(conn)
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
