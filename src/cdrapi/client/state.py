"""The sync state file: how far an incremental pull has got, kept safe across crashes.

A small JSON file::

    {"version": 1, "url": "https://pbx/api/cdr", "filters": "filters%5Bdirection%5D=IN",
     "last_id": 51234, "output": {"target": "/data/calls.jsonl", "size": 73400320},
     "staging": null, "publishing": null}

- ``last_id``: every matching record up to this id is in the output, durably. The next
  pull asks for ``from_id = last_id + 1``.
- ``url`` and ``filters`` (the query string of the filters, ``from_id`` aside) say which pull
  the state belongs to; using it for another is refused, since its ids would skip records.
- ``output``: the file the last pull published and its size. A pull adds to an existing
  file only if it is that file, unchanged: adding to any other could double records.
- ``staging``: progress of an unfinished pull into a file output (records written to the
  temporary file and made durable, up to an id), so a new run continues it.
- ``publishing``: a finished file waiting to be renamed over the output; a run that finds
  it finishes the rename first (see :mod:`cdrapi.client.pull`).

Every save writes a temporary file, syncs it to disk and renames it over the old one, so
the file is always either the old state or the new one, never half of each. While a
process uses a state file it holds an exclusive lock on ``<file>.lock``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from cdrapi.client.errors import StateError
from cdrapi.protocol.encoding import http_build_query

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["SyncState", "atomic_write", "fsync_directory"]

VERSION = 1


def fsync_directory(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (no-op where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: write a temporary file, fsync, rename, fsync the dir."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def filters_key(filters: Mapping[str, Any]) -> str:
    """The filters a state belongs to, as a query string (``from_id`` is the state's own)."""
    return http_build_query({k: v for k, v in filters.items() if k != "from_id"})


@dataclass
class SyncState:
    """Where an incremental pull stands; see the module docstring."""

    path: Path
    url: str
    filters: str
    last_id: int | None = None
    output: dict[str, Any] | None = None
    staging: dict[str, Any] | None = None
    publishing: dict[str, Any] | None = None
    _lock: IO[bytes] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str], url: str, filters: Mapping[str, Any]) -> SyncState:
        """Lock and read the state at ``path`` (a new one if missing) for this pull."""
        state = cls(Path(path), url, filters_key(filters))
        state._acquire()
        try:
            state._load()
        except BaseException:
            state.close()
            raise
        return state

    def _acquire(self) -> None:
        if fcntl is None:
            return
        try:
            lock = open(self.path.with_name(self.path.name + ".lock"), "ab")  # noqa: SIM115
        except OSError as exc:
            raise StateError(f"cannot use state file {self.path}: {exc}") from exc
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            lock.close()
            raise StateError(f"state file {self.path} is in use by another pull") from exc
        self._lock = lock

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"cannot read state file {self.path}: {exc}") from exc
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError("not a cdrapi sync state")
            last_id = data.get("last_id")
            if last_id is not None and (isinstance(last_id, bool) or not isinstance(last_id, int)):
                raise ValueError("bad last_id")
        except ValueError as exc:
            raise StateError(f"state file {self.path} is not a cdrapi sync state: {exc}") from exc
        if data.get("url") != self.url or data.get("filters") != self.filters:
            raise StateError(
                f"state file {self.path} belongs to another pull ({data.get('url')} with "
                f"filters {data.get('filters')!r}); use a new state file for this one"
            )
        self.last_id = last_id
        self.output = data.get("output")
        self.staging = data.get("staging")
        self.publishing = data.get("publishing")

    def save(self) -> None:
        """Write the state atomically and durably."""
        data = {
            "version": VERSION,
            "url": self.url,
            "filters": self.filters,
            "last_id": self.last_id,
            "output": self.output,
            "staging": self.staging,
            "publishing": self.publishing,
        }
        try:
            atomic_write(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as exc:
            raise StateError(f"cannot write state file {self.path}: {exc}") from exc

    def close(self) -> None:
        """Release the lock."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> SyncState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
