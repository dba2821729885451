"""Asterisk's SQL ``cdr`` table (cdr_mysql/cdr_adaptive_odbc on MariaDB/MySQL, FreePBX's
``asteriskcdrdb.cdr``, cdr_pgsql, cdr_sqlite3_custom) into the store.

The table's columns are looked up, so any of those schemas works: ``calldate`` (or
``start``), the classic columns, and when present ``end``, ``answer``, ``uniqueid``,
``linkedid``, ``sequence``, ``peeraccount``, ``userfield``, and FreePBX's ``did``,
``recordingfile``, ``cnum``, ``cnam``. ``disposition`` and ``amaflags`` may be text or
Asterisk's integers.

Incremental reading: rows are read by ``calldate`` from the last watermark (the latest
call start stored) minus ``lookback``. A CDR is inserted when its call *ends*, possibly
by a transaction that commits late, so a row can appear behind the watermark; the
lookback window (default 3 hours: longer than the longest call plus any commit delay) is
read again on every poll, and rows already stored are recognised by their key
(uniqueid and sequence, or the whole row), so nothing is skipped or doubled.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, column, create_engine, inspect, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.types import Date, DateTime

from cdrapi.ingest.batch import Batch, commit
from cdrapi.ingest.cdr import FIELDS, INDEX
from cdrapi.ingest.errors import Reject, SourceError
from cdrapi.ingest.options import Options
from cdrapi.ingest.queue_log import queue_fields_for_new_calls
from cdrapi.ingest.rejects import RejectFile
from cdrapi.ingest.summary import Summary
from cdrapi.store.writer import read_checkpoint

__all__ = ["connect_source", "ingest_db"]

_START_NAMES = ("calldate", "start", "starttime")
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
        raise SourceError(f"cannot use database URL {_safe(url)}: {exc}") from exc


def _safe(url: str) -> str:
    """``url`` as the user gave it, password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(invalid URL)"


def _text(value: Any, zone: dt.tzinfo | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:  # timestamptz: shown in the PBX's zone
            value = value.astimezone(zone).replace(tzinfo=None)
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("cp1252", "replace")
    return str(value)


class _Table:
    """The PBX table's columns and how to read raw CDRs from it."""

    def __init__(
        self, source: Engine, name: str, where: str, zone: dt.tzinfo | None = None
    ) -> None:
        self.zone = zone
        try:
            found = {c["name"].lower(): c for c in inspect(source).get_columns(name)}
        except SQLAlchemyError as exc:
            raise SourceError(f"cannot read table {name!r} of {where}: {_reason(exc)}") from exc
        start = next((n for n in _START_NAMES if n in found), None)
        if start is None:
            raise SourceError(
                f"table {name!r} has no calldate column: is it an Asterisk cdr table?"
            )
        self.start = start
        self.dated = isinstance(found[start]["type"], DateTime | Date)
        names = {n: found[n]["name"] for n in found}
        wanted = [n for n in FIELDS if n in names and n != "start"]
        self.fields = [INDEX["start"], *(INDEX[n] for n in wanted)]
        self.columns: list[Any] = [column(names[start]), *(column(names[n]) for n in wanted)]
        self.table = table(name, *self.columns)
        self.has_end = "end" in names

    def select(self, since: str | None) -> Any:
        query = select(*self.columns).order_by(self.columns[0])
        if since is not None:
            bound: Any = dt.datetime.fromisoformat(since) if self.dated else since
            query = query.where(self.columns[0] >= bound)
        return query

    def cdr(self, row: Sequence[Any]) -> list[str]:
        values = [""] * len(FIELDS)
        for index, value in zip(self.fields, row, strict=True):
            values[index] = _text(value, self.zone)
        if not self.has_end and values[INDEX["start"]] and values[INDEX["duration"]].isdigit():
            try:
                began = dt.datetime.fromisoformat(values[INDEX["start"]])
                ended = began + dt.timedelta(seconds=int(values[INDEX["duration"]]))
                values[INDEX["end"]] = ended.strftime("%Y-%m-%d %H:%M:%S")
            except ValueError:
                pass
        return values


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


def _identity(cdr: Sequence[str]) -> str:
    uid, seq = cdr[INDEX["uniqueid"]], cdr[INDEX["sequence"]]
    if uid and seq:
        return f"{uid}:{seq}"
    return hashlib.blake2b("\x1f".join(cdr).encode(), digest_size=16).hexdigest()


def _csv_line(cdr: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cdr)
    return out.getvalue().encode()


def ingest_db(
    engine: Engine,
    url: str,
    options: Options | None = None,
    *,
    table_name: str = "cdr",
    follow: bool = False,
    lookback: dt.timedelta = dt.timedelta(hours=3),
    interval: float = 1.0,
) -> Summary:
    """Import the Asterisk ``cdr`` table at ``url``; with ``follow``, poll it until
    ``options.stop`` is set."""
    options = options or Options()
    source_engine = connect_source(url)
    name = f"db:{_safe(url)}#{table_name}"[:255]
    summary = Summary()
    rejects = RejectFile(options.rejects, options.report)
    started = time.perf_counter()
    try:
        pbx = _Table(source_engine, table_name, _safe(url), options.zone())
        options.prepare(engine)
        deriver, recovery = options.deriver(), options.recovery()
        saved = None if options.from_start else read_checkpoint(engine, name)
        watermark: str | None = json.loads(saved)["watermark"] if saved else None
        seen: dict[str, str] = {}
        while True:
            since = None
            if watermark is not None:
                since = (dt.datetime.fromisoformat(watermark) - lookback).strftime(
                    "%Y-%m-%d %H:%M:%S"
                )
                seen = {key: when for key, when in seen.items() if when >= since}
            for batch, mark in _batches(
                source_engine, pbx, since, seen, deriver, name, watermark, lookback
            ):
                batch.recovered = recovery.track(batch.rows, batch.callbacks)
                watermark = mark
                batch.checkpoint = (name, json.dumps({"watermark": watermark}))
                stored = commit(engine, batch, rejects, queue_fields_for_new_calls)
                summary.add(batch.lines, stored, len(batch.rows), len(batch.rejects))
                summary.seconds = time.perf_counter() - started
                if options.progress is not None:
                    options.progress(summary)
            if not follow or (options.stop is not None and options.stop.wait(interval)):
                break
            if options.stop is None:
                time.sleep(interval)
    finally:
        rejects.close()
        source_engine.dispose()
    summary.seconds = time.perf_counter() - started
    return summary


def _batches(
    source: Engine,
    pbx: _Table,
    since: str | None,
    seen: dict[str, str],
    deriver: Any,
    name: str,
    watermark: str | None,
    lookback: dt.timedelta,
) -> Iterator[tuple[Batch, str | None]]:
    """Batches of the rows from ``since`` on that ``seen`` does not hold yet."""
    batch = Batch()
    try:
        with source.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
                pbx.select(since)
            )
            for number, row in enumerate(result, 1):
                cdr = pbx.cdr(row)
                key, when = _identity(cdr), cdr[INDEX["start"]]
                if key in seen:
                    continue
                batch.lines += 1
                try:
                    batch.rows.append(deriver.row(cdr))
                except ValueError as exc:
                    reason = f"uniqueid {cdr[INDEX['uniqueid']]!r}: {exc}"
                    batch.rejects.append(Reject(name, number, reason, _csv_line(cdr)))
                seen[key] = when
                if when and (watermark is None or when > watermark):
                    watermark = when
                if batch.lines >= BATCH:
                    yield batch, watermark
                    batch = Batch()
                    if len(seen) > 20 * BATCH and watermark:  # a long first read: keep the window
                        horizon = (dt.datetime.fromisoformat(watermark) - lookback).isoformat(" ")
                        for old in [k for k, w in seen.items() if w < horizon]:
                            del seen[old]
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot read {name}: {_reason(exc)}") from exc
    if batch.lines:
        yield batch, watermark
