"""Whether a store can answer: the database reachable and its schema in place.

``SELECT 1`` proves only that a connection opens (on SQLite not even that the file
exists). :func:`ping` reads the tables every page needs, so a deleted, emptied or
unreadable database, or a stopped PostgreSQL server, is reported as such. The server's
``/healthz`` runs it through :meth:`~cdrapi.store.executor.StoreExecutor.ping`.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.store.engine import StoreError, read_version
from cdrapi.store.schema import calls

__all__ = ["ping"]


def ping(engine: Engine) -> None:
    """Return if the store answers a read of ``calls`` and ``meta``; raise StoreError if not."""
    driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
    try:
        with engine.connect() as conn:
            conn.execute(select(calls.c.id).limit(1)).all()
            read_version(conn)
    except (SQLAlchemyError, driver_error) as exc:
        raise StoreError(f"the store cannot be read: {exc.__class__.__name__}") from exc
