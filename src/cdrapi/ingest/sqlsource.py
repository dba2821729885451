"""A table of the PBX's database read into the store: once, or polled with ``follow``.

:func:`poll_table` reads a :class:`TableRows` (the ``cdr`` table, a ``queue_log``
table) ordered by its time column, from the saved watermark minus ``lookback`` (see
:mod:`cdrapi.ingest.watermark`), and commits each batch with the position after it, so
a run resumes where the last one stopped. Each row read is a *line* once: rows read
again in the lookback window are skipped (known from this run, from the store by their
key, or from the checkpoint), a second identical row counts as already there, a row
that cannot be used is rejected (reported, written to the reject file) once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from cdrapi.ingest.batch import AfterRows, Batch, commit
from cdrapi.ingest.errors import SourceError
from cdrapi.ingest.rejects import RejectFile
from cdrapi.ingest.summary import Summary
from cdrapi.ingest.watermark import AGAIN, COPY, Clock, Window, dumps_position, loads_position
from cdrapi.store.writer import Writer

__all__ = ["BATCH", "TableRows", "connect_source", "poll_table", "reason", "safe_url", "source_url"]

#: Rows per batch (one transaction in the store).
BATCH = 5000


def source_url(url: str) -> str:
    """User-facing URL schemes onto SQLAlchemy drivers (PyMySQL for MariaDB/MySQL)."""
    for prefix, driver in (
        ("mysql://", "mysql+pymysql://"), ("mariadb://", "mysql+pymysql://"),
        ("postgresql://", "postgresql+psycopg://"), ("postgres://", "postgresql+psycopg://"),
    ):  # fmt: skip
        if url.startswith(prefix):
            url = driver + url[len(prefix) :]
            break
    if url.startswith("mysql+pymysql://") and "charset=" not in url:
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    return url


def connect_source(url: str) -> Engine:
    """An engine for the PBX database at ``url``."""
    try:
        return create_engine(source_url(url), pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise SourceError(f"cannot use database URL {safe_url(url)}: {exc}") from exc


def safe_url(url: str) -> str:
    """``url`` as the user gave it, password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(invalid URL)"


def reason(exc: BaseException) -> str:
    """The first line of what the database said."""
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


class TableRows(Protocol):
    """What :func:`poll_table` needs of a table."""

    #: The checkpoint (and reject) name of the source.
    name: str
    #: How its time column is compared (see :mod:`cdrapi.ingest.watermark`).
    clock: Clock
    #: Whether the store holds each stored row's key (``calls.source_key``); if not,
    #: the checkpoint keeps the keys of the lookback window.
    keys_in_store: bool

    def select(self, bound: Any) -> Any:
        """The query for the rows from ``bound`` on (``None``: all), by time."""

    def read(self, row: Any) -> tuple[str, Any, Any]:
        """(key, position of its time (``clock.mark``; None: no time), what :meth:`take`
        needs) of a row."""

    def take(self, item: Any, number: int, batch: Batch) -> bool:
        """Add a row (``number``: its rank in this read) to ``batch``; False if rejected."""

    def known(self, conn: Connection, since: str) -> Iterable[str]:
        """Keys of the rows the store has from ``since`` (its local ``time`` text) on."""

    def finish(self, batch: Batch) -> None:
        """A batch is complete (before it is committed)."""


def poll_table(
    store: Writer,
    source: Engine,
    rows: TableRows,
    *,
    rejects: RejectFile,
    summary: Summary,
    after_rows: AfterRows | None,
    from_start: bool,
    follow: bool,
    lookback: dt.timedelta,
    interval: float,
    stop: threading.Event | None,
    progress: Callable[[Summary], None] | None,
) -> Summary:
    """Read ``rows`` of the PBX's database ``source`` into ``store`` (the run's writer)
    from where the last run stopped; with ``follow``, poll every ``interval`` seconds
    until ``stop`` is set."""
    clock, window = rows.clock, Window()
    saved = None if from_start else store.load_checkpoint(rows.name)
    watermark = loads_position(clock, saved, window)
    if watermark is not None and rows.keys_in_store:  # what earlier runs read and stored
        bound = clock.bound(watermark, lookback)
        since = clock.store_since(bound)
        if since is not None:
            with store.engine.connect() as conn:
                for key in rows.known(conn, since):
                    if key not in window.rows:
                        window.know(key, bound)
    started = time.perf_counter()
    while True:
        bound = None if watermark is None else clock.bound(watermark, lookback)
        if bound is not None:
            window.prune(bound)
        window.begin()
        batches = _read(source, rows, bound, window, watermark, lookback)
        for batch, watermark, copies in batches:  # the watermark after each batch
            rows.finish(batch)
            batch.checkpoint = (rows.name, dumps_position(clock, watermark, window))
            stored = commit(store, batch, rejects, after_rows)
            summary.add(batch.lines, stored, len(batch.rows), len(batch.rejects))
            summary.note(batch.directions, batch.warnings)
            summary.duplicates += copies
            summary.seconds = time.perf_counter() - started
            if progress is not None:
                progress(summary)
        if not follow or (stop is not None and stop.wait(interval)):
            break
        if stop is None:
            time.sleep(interval)
    summary.seconds = time.perf_counter() - started
    return summary


def _read(
    source: Engine,
    rows: TableRows,
    bound: Any,
    window: Window,
    watermark: Any,
    lookback: dt.timedelta,
) -> Iterator[tuple[Batch, Any, int]]:
    """(batch, watermark after it, identical copies in it) for the rows from ``bound``
    on that are new lines."""
    clock = rows.clock
    batch, copies = Batch(), 0
    try:
        with source.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
                rows.select(bound)
            )
            for number, row in enumerate(result, 1):
                key, mark, item = rows.read(row)
                seen = window.take(key, mark)
                if seen == AGAIN:
                    continue
                batch.lines += 1
                if seen == COPY:
                    copies += 1
                elif not rows.take(item, number, batch) or not rows.keys_in_store:
                    window.hold(key)
                if (
                    mark is not None
                    and (watermark is None or mark > watermark)
                    and clock.epoch(mark) is not None
                ):  # a time that is no time (``garbage`` sorts after digits) moves nothing
                    watermark = mark
                if batch.lines >= BATCH:
                    if watermark is not None:  # keep the window (and checkpoint) small
                        window.prune(clock.bound(watermark, lookback))
                    yield batch, watermark, copies
                    batch, copies = Batch(), 0
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot read {rows.name}: {reason(exc)}") from exc
    if batch.lines:
        if watermark is not None:
            window.prune(clock.bound(watermark, lookback))
        yield batch, watermark, copies
