"""The reject file: every line that could not be imported, as it was, one per line.

Fix the lines and import the file again. Each reject is also reported (file, line
number and reason) to the caller's ``report`` function (the CLI prints it on stderr).
Rejects are written and flushed to disk before the batch they belong to commits, so a
crash can never lose one (it may repeat the rejects of the batch it interrupted). When
the sources are read again from their start (``again``: ``--from-start``), a line the file
already holds is not appended again: each line in the file at the start of the run stands
for one reject of that line. Otherwise every rejected line is appended, also one that
equals an earlier one.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from cdrapi.ingest.errors import Reject, SourceError

__all__ = ["RejectFile"]


class RejectFile:
    """Appends rejected lines to ``path`` (created on the first reject)."""

    def __init__(
        self,
        path: str | Path | None,
        report: Callable[[Reject], None] | None = None,
        *,
        again: bool = False,
    ) -> None:
        self.path = Path(path) if path else None
        self.report = report
        self.again = again
        self.count = 0
        self._file: BinaryIO | None = None
        self._held: Counter[bytes] | None = None  # digests of the lines already in the file

    def write(self, rejects: Iterable[Reject]) -> None:
        wrote = False
        for reject in rejects:
            self.count += 1
            if self.report is not None:
                self.report(reject)
            if self.path is None:
                continue
            if self._file is None:
                self._open()
            assert self._file is not None and self._held is not None
            line = reject.raw.rstrip(b"\r\n") + b"\n"
            digest = _digest(line)
            if self._held[digest]:  # already in the file
                self._held[digest] -= 1
                continue
            try:
                self._file.write(line)
            except OSError as exc:
                raise self._error(exc) from exc
            wrote = True
        if wrote and self._file is not None:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: a device that cannot sync
                    raise self._error(exc) from exc

    def _open(self) -> None:
        assert self.path is not None
        self._held = Counter()
        if self.again and self.path.is_file():  # not a device or a pipe (/dev/stderr)
            try:
                with open(self.path, "rb") as existing:
                    self._held.update(_digest(line.rstrip(b"\r\n") + b"\n") for line in existing)
            except OSError as exc:
                raise SourceError(f"cannot read reject file {self.path}: {exc}") from exc
        try:
            self._file = open(self.path, "ab")  # noqa: SIM115 (kept open for the run)
        except OSError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: OSError) -> SourceError:
        if exc.errno == errno.ENOSPC:
            return SourceError(
                f"the disk holding {self.path} is full ({exc.strerror}) while writing rejected "
                "lines; free space and run the same command again: it resumes where it stopped"
            )
        return SourceError(f"cannot write reject file {self.path}: {exc}")

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as exc:  # what it still held could not be written
                raise self._error(exc) from exc


def _digest(line: bytes) -> bytes:
    return hashlib.blake2b(line, digest_size=16).digest()
