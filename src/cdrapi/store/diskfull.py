"""A full disk under the store, reported as what it is: which disk, doing what, what next.

A write that runs out of space fails deep in the driver: sqlite3's ``OperationalError``
"database or disk is full" (``SQLITE_FULL``), PostgreSQL's ``DiskFull`` (SQLSTATE
53100), an ``OSError`` with ``ENOSPC``. :func:`reporting_full_disk` wraps the store's
writes and turns such an error into :class:`DiskFull`, a
:class:`~cdrapi.store.engine.StoreError`, so that every command ends with one ``Error:``
line instead of a traceback. Nothing half-written stays behind: the transaction that
failed is rolled back whole, its checkpoint with it, so the same import run again after
space is freed resumes where it stopped.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from cdrapi.store.engine import StoreError

__all__ = ["AGAIN", "RESUMES", "DiskFull", "disk_full", "reporting_full_disk"]

_SQLITE_FULL = 13  # the primary result code, under any extended one
_POSTGRES_DISK_FULL = "53100"

#: What to do, when the failed write was an import's batch (its checkpoint not saved).
RESUMES = "free space and run the same command again: it resumes where it stopped"
#: What to do otherwise.
AGAIN = "free space and run the same command again"


class DiskFull(StoreError):
    """The disk under the store (or SQLite's temporary directory) is full."""


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (a driver error, wrapped by SQLAlchemy or not) means no space left."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, OSError):
        return orig.errno == errno.ENOSPC
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == _SQLITE_FULL) or "disk is full" in str(orig)
    return getattr(orig, "sqlstate", None) == _POSTGRES_DISK_FULL


@contextmanager
def reporting_full_disk(engine: Engine, doing: str, then: str = RESUMES) -> Iterator[None]:
    """Raise a full disk met in the block as :class:`DiskFull`: "the disk holding
    <where> is full (<driver's words>) while <doing>; <then>"."""
    try:
        yield
    except (DBAPIError, sqlite3.Error, OSError) as exc:
        if not disk_full(exc):
            raise
        raise DiskFull(_message(engine, exc, doing, then)) from exc


def _message(engine: Engine, exc: BaseException, doing: str, then: str) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    words = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    if isinstance(orig, OSError):
        words = os.strerror(errno.ENOSPC)
    url = engine.url
    if engine.dialect.name != "sqlite":
        server = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
        return f"the disk of the database server {server} is full ({words}) while {doing}; {then}"
    path = _sqlite_file(url.database or "")
    temp = _sqlite_temp_dir()
    if not path or (not _has_room(temp) and _has_room(os.path.dirname(path))):
        # the index sorter's or a temporary table's files filled SQLite's temp directory
        return f"the disk holding {temp} is full ({words}) while {doing}; {then}"
    return f"the disk holding {path} is full ({words}) while {doing}; {then}"


def _sqlite_file(database: str) -> str:
    """The file a SQLite URL's database names (a path or a ``file:`` URI), or ``""``."""
    if database.startswith("file:"):
        database = unquote(database[5:].split("?", 1)[0])
        if database.startswith("//"):  # file://host/path
            database = "/" + database[2:].partition("/")[2]
    if database in ("", ":memory:") or "mode=memory" in database:
        return ""
    return os.path.abspath(database)


def _has_room(directory: str, needed: int = 1 << 20) -> bool:
    try:
        found = os.statvfs(directory)
    except OSError:
        return False
    return found.f_bavail * found.f_frsize >= needed


def _sqlite_temp_dir() -> str:
    """Where SQLite puts its temporary files on Unix (its own search order)."""
    for candidate in (
        os.environ.get("SQLITE_TMPDIR"),
        os.environ.get("TMPDIR"),
        "/var/tmp",
        "/usr/tmp",
        "/tmp",
    ):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return "."
