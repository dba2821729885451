"""A database table upserted by id: SQLite or PostgreSQL, through SQLAlchemy Core.

``sqlite:///path/to/file.db`` or ``postgresql://user:pass@host/db`` (psycopg 3). The table
(``calls`` unless told otherwise) is created when missing, with the typed columns of
:mod:`cdrapi.client.columns` and ``id`` as its primary key. A record whose id is already
in the table replaces that row, so pulling the same records twice leaves one row each
(and picks up records the server changed).

Records are written inside a transaction that each checkpoint commits. A pull saves its
state only after the commit, so a crash repeats at most the uncommitted records, which the
upsert then writes once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeEngine

from cdrapi.client.columns import KINDS, sql_row
from cdrapi.client.errors import OutputError
from cdrapi.client.exchange import Record
from cdrapi.client.outputs import is_database_url
from cdrapi.client.outputs.base import Output
from cdrapi.protocol.records import RECORD_KEYS

__all__ = ["DatabaseOutput", "calls_table"]

_SCHEMES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}

# On SQLite, times are kept as the API's own 'YYYY-MM-DD HH:MM:SS' text (sortable).
_SQLITE_TIME = sqlite.DATETIME(  # type: ignore[no-untyped-call]
    storage_format="%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d",
    regexp=r"(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)",
)


def _engine_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if "+" in scheme:
        return url
    return f"{_SCHEMES[scheme]}://{rest}"


def _type(kind: str) -> TypeEngine[Any]:
    if kind == "int":
        return BigInteger()
    if kind == "timestamp":
        return DateTime().with_variant(_SQLITE_TIME, "sqlite")
    if kind == "duration":
        return Integer()
    if kind == "bool":
        return Boolean()
    return Text()


def calls_table(name: str, metadata: MetaData) -> Table:
    """The table records are upserted into."""
    columns = [
        Column(key, _type(KINDS[key]), primary_key=key == "id", autoincrement=False)
        for key in RECORD_KEYS
    ]
    return Table(name, metadata, *columns)


class DatabaseOutput(Output):
    """A table in a SQLite or PostgreSQL database."""

    def __init__(self, url: str, *, table: str = "calls") -> None:
        if not is_database_url(url):
            raise ValueError(f"not a sqlite:// or postgresql:// URL: {url!r}")
        self.target = url
        try:
            self._shown = make_url(url).render_as_string(hide_password=True)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from exc
        self.table = calls_table(table, MetaData())
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._upsert: Insert | None = None

    @property
    def name(self) -> str:
        return self._shown

    def _fail(self, exc: Exception) -> OutputError:
        return OutputError(f"cannot write to {self.name}: {type(exc).__name__}: {exc}")

    def open(self, *, append: bool, resume: Mapping[str, Any] | None, durable: bool) -> bool:
        try:
            engine = create_engine(_engine_url(self.target))
            self._engine = engine
            dialect = engine.dialect.name
            if dialect not in ("sqlite", "postgresql"):
                raise OutputError(f"unsupported database {dialect!r}: use sqlite or postgresql")
            self.table.metadata.create_all(engine)
            self._conn = engine.connect()
        except (SQLAlchemyError, ImportError) as exc:
            self.close()
            raise self._fail(exc) from exc
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(self.table)
        changed = {key: insert.excluded[key] for key in RECORD_KEYS if key != "id"}
        self._upsert = insert.on_conflict_do_update(index_elements=["id"], set_=changed)
        return False

    def write(self, records: Sequence[Record]) -> None:
        if self._conn is None or self._upsert is None:
            raise RuntimeError("output is not open")
        if not records:
            return
        try:
            self._conn.execute(self._upsert, [sql_row(record) for record in records])
        except SQLAlchemyError as exc:
            raise self._fail(exc) from exc

    def checkpoint(self) -> None:
        if self._conn is None:
            raise RuntimeError("output is not open")
        try:
            self._conn.commit()
        except SQLAlchemyError as exc:
            raise self._fail(exc) from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # rolls back what no checkpoint committed
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
