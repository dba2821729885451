"""Pages of calls: ``row_count`` and the 100 records of a page, in ``id`` order.

Clients walk pages with ``page += 1``. Done naively that is ``OFFSET (page-1)*100``,
whose cost grows with the page number. Instead, for each filter set and store version
we remember the count and the last id of every page served; the next page then starts
``WHERE id > <last id of the previous page>`` (keyset), so the ten-thousandth page costs
what the first does. The store version (``meta.version``) changes with every write, so
nothing cached outlives the data it describes; each API worker keeps its own cache.

Nor does it outlive the file: what was learned from a SQLite file that was since deleted
or replaced describes another database (whose version may be the same), so the cache is
dropped when the engine sees another file (:func:`~cdrapi.store.engine.store_generation`),
and a page read while the file changed is read again.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from cdrapi.protocol.filters import CallFilters
from cdrapi.protocol.pagination import PAGE_SIZE, page_count
from cdrapi.protocol.records import RECORD_COLUMNS
from cdrapi.store.engine import StoreError, driver_rows, read_version, store_generation
from cdrapi.store.queries import where_clauses
from cdrapi.store.schema import calls

__all__ = ["CallPages", "Page"]

_SELECTED = [calls.c[column] for column in RECORD_COLUMNS]
_SORT_LIMIT = 200_000  # matches up to which a page sorts them instead of scanning by id


@dataclass(frozen=True, slots=True)
class Page:
    row_count: int
    page: int
    rows: Sequence[Sequence[Any]]  # each holds RECORD_COLUMNS, in order (id first)


@dataclass(slots=True)
class _Known:
    """What one filter set looked like at one store version."""

    row_count: int
    pages: list[int] = field(default_factory=list)  # sorted page numbers with a known end
    last_ids: dict[int, int] = field(default_factory=dict)  # page -> its last id

    def nearest(self, page: int) -> tuple[int, int | None]:
        """The highest page before ``page`` whose last id is known (0, None if none)."""
        index = bisect.bisect_left(self.pages, page) - 1
        if index < 0:
            return 0, None
        known = self.pages[index]
        return known, self.last_ids[known]

    def remember(self, page: int, last_id: int) -> None:
        if page not in self.last_ids:
            bisect.insort(self.pages, page)
        self.last_ids[page] = last_id


class CallPages:
    """Serves pages of calls from one engine, with a per-process cache."""

    def __init__(self, engine: Engine, *, cache_size: int = 256) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._cache: OrderedDict[tuple[CallFilters, int], _Known] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._generation = store_generation(engine)
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        # The rows of a page by their ids, run as plain SQL: rendering a hundred bound
        # values through the expression layer costs more than the query itself.
        columns = select(*_SELECTED).compile(dialect=engine.dialect)
        self._select_rows = f"{columns} WHERE calls.id "

    def fetch(self, filters: CallFilters, page: int) -> Page:
        """The requested page; raises :class:`StoreError` if the database fails."""
        for _ in range(2):
            generation = store_generation(self.engine)
            if generation != self._generation:
                with self._lock:
                    self._generation = generation
                    self._cache.clear()
            try:
                result = self._fetch(filters, page)
            except (SQLAlchemyError, self._driver_error) as exc:
                raise StoreError(f"database error: {exc.__class__.__name__}") from exc
            if store_generation(self.engine) == generation:
                return result
        raise StoreError("the database file keeps changing")

    def _fetch(self, filters: CallFilters, page: int) -> Page:
        where = where_clauses(filters, self._dialect)
        connection = self.engine.connect()
        if self._dialect == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection as conn, conn.begin():
            key = (filters, read_version(conn))
            known = self._lookup(key)
            if known is None:
                row_count = conn.execute(select(func.count()).select_from(calls).where(*where))
                known = self._store(key, _Known(row_count.scalar_one()))
            if page > page_count(known.row_count):
                return Page(known.row_count, page, [])
            with self._lock:
                before, after_id = known.nearest(page)
            # Few matches: sort their ids (found through the filters' indexes) rather than
            # walk the whole table in id order looking for them; ids correlate with time,
            # so matches of a date range sit together, often at the far end. PostgreSQL's
            # planner assumes they are spread evenly and walks, so it is told; SQLite's
            # planner sorts by itself, and ``id + 0`` would only cost it time.
            few = self._dialect == "postgresql" and where and known.row_count <= _SORT_LIMIT
            query = select(calls.c.id).where(*where).limit(PAGE_SIZE)
            query = query.order_by(calls.c.id + 0 if few else calls.c.id)
            if after_id is not None:
                query = query.where(calls.c.id > after_id)
            skip = (page - 1 - before) * PAGE_SIZE
            if skip:
                query = query.offset(skip)
            ids = conn.execute(query).scalars().all()
            rows: list[tuple[Any, ...]] = []
            if ids:
                rows = self._rows(conn, ids)
        if rows:
            with self._lock:
                known.remember(page, rows[-1][0])
        return Page(known.row_count, page, rows)

    def _rows(self, conn: Connection, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        params: tuple[Any, ...]
        if self._dialect == "postgresql":
            sql, params = f"{self._select_rows}= ANY(%s) ORDER BY calls.id", (list(ids),)
        else:
            marks = ",".join("?" * len(ids))
            sql, params = f"{self._select_rows}IN ({marks}) ORDER BY calls.id", tuple(ids)
        return driver_rows(conn, sql, params)

    def _lookup(self, key: tuple[CallFilters, int]) -> _Known | None:
        with self._lock:
            known = self._cache.get(key)
            if known is not None:
                self._cache.move_to_end(key)
            return known

    def _store(self, key: tuple[CallFilters, int], known: _Known) -> _Known:
        with self._lock:
            self._cache[key] = known
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return known
