"""A read of the dashboard's days in the background (the server's warm-up), ended by the
server's shutdown.

:meth:`Stop.watching` watches the connection of such a read, and :meth:`Stop.set` ends
the statement under way: SQLite calls the connection's progress handler every
:data:`STEPS` steps of its virtual machine (some milliseconds), which then answers stop
(the statement fails, interrupted); PostgreSQL is sent a cancel request. Every read
given the stop raises :class:`Stopped` from then on.

(The warm-up's thread runs at a lower priority, :mod:`cdrapi.web.dashboard`. Pausing it
while requests are served was tried: a call log page during the warm-up took the same
time with the pauses as without, the operating system's priority doing that work.)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection

__all__ = ["STEPS", "Stop", "Stopped"]

#: SQLite: virtual machine steps between two calls of the progress handler.
STEPS = 100_000


class Stopped(Exception):
    """A read ended by its :class:`Stop`."""


class Stop:
    """Ends the reads of a thread working in the background (see the module's docstring)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._running: Any = None  # PostgreSQL: the DBAPI connection of the read under way

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Whether it was set within ``timeout`` seconds."""
        return self._event.wait(timeout)

    def set(self) -> None:
        """Stop: the statement under way ended, every later read refused."""
        self._event.set()
        with self._lock:
            if self._running is not None:
                self._running.cancel_safe()

    @contextlib.contextmanager
    def watching(self, conn: Connection) -> Iterator[None]:
        """``conn``'s statements, ended when the stop is set (raising :class:`Stopped`)."""
        dbapi: Any = conn.connection.dbapi_connection
        sqlite_store = conn.dialect.name == "sqlite"
        stopped = self._event.is_set
        if sqlite_store:
            dbapi.set_progress_handler(stopped, STEPS)
        else:
            with self._lock:
                self._running = dbapi
        try:
            if stopped():
                raise Stopped
            yield
        except Exception as exc:
            if stopped() and not isinstance(exc, Stopped):
                raise Stopped from exc  # (the statement interrupted: the driver's error)
            raise
        finally:
            if sqlite_store:
                dbapi.set_progress_handler(None, 0)
            else:
                with self._lock:
                    self._running = None
