"""The directory tables: projects, users, queues, trunks and inbound routes.

Ingestion replaces them with the configured directory at the start of a run
(:func:`replace_directory`) or, given none, reads the stored one (:func:`read_directory`);
the API serves lookups by id from them. Call records keep the names they were stored
with. Rows are plain mappings keyed by the tables' column names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, Table, select

from cdrapi.store.diskfull import AGAIN, reporting_full_disk
from cdrapi.store.schema import inbound_routes, projects, queues, trunks, users

__all__ = ["DIRECTORY_TABLES", "read_directory", "replace_directory"]

#: The directory's tables by name.
DIRECTORY_TABLES: dict[str, Table] = {
    "projects": projects,
    "users": users,
    "queues": queues,
    "trunks": trunks,
    "inbound_routes": inbound_routes,
}


def replace_directory(
    engine: Engine,
    *,
    projects: Iterable[Mapping[str, Any]] | None = None,
    users: Iterable[Mapping[str, Any]] | None = None,
    queues: Iterable[Mapping[str, Any]] | None = None,
    trunks: Iterable[Mapping[str, Any]] | None = None,
    inbound_routes: Iterable[Mapping[str, Any]] | None = None,
) -> None:
    """Replace the contents of each directory table given (``None`` leaves it alone).

    All tables are written in one transaction. Call records keep the names they were
    stored with; the directory only serves lookups by id.
    """
    given = {
        "projects": projects,
        "users": users,
        "queues": queues,
        "trunks": trunks,
        "inbound_routes": inbound_routes,
    }
    with reporting_full_disk(engine, "storing the directory", AGAIN), engine.begin() as conn:
        for name, rows in given.items():
            if rows is None:
                continue
            table = DIRECTORY_TABLES[name]
            conn.execute(table.delete())
            values = [dict(row) for row in rows]
            if values:
                conn.execute(table.insert(), values)


def read_directory(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every directory table's rows (table name -> rows by id), read in one transaction."""
    with engine.connect() as conn:
        return {
            name: [dict(row._mapping) for row in conn.execute(select(table).order_by(table.c.id))]
            for name, table in DIRECTORY_TABLES.items()
        }
