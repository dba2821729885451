"""The reject file: every line that could not be imported, as it was, one per line.

Fix the lines and import the file again. Each reject is also reported (file, line
number and reason) to the caller's ``report`` function (the CLI prints it on stderr).
Rejects are written and flushed to disk before the batch they belong to commits, so a
crash can repeat a reject in the file but never lose one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from cdrapi.ingest.errors import Reject, SourceError

__all__ = ["RejectFile"]


class RejectFile:
    """Appends rejected lines to ``path`` (created on the first reject)."""

    def __init__(
        self, path: str | Path | None, report: Callable[[Reject], None] | None = None
    ) -> None:
        self.path = Path(path) if path else None
        self.report = report
        self.count = 0
        self._file: BinaryIO | None = None

    def write(self, rejects: Iterable[Reject]) -> None:
        wrote = False
        for reject in rejects:
            self.count += 1
            if self.report is not None:
                self.report(reject)
            if self.path is None:
                continue
            if self._file is None:
                try:
                    self._file = open(self.path, "ab")  # noqa: SIM115 (kept open for the run)
                except OSError as exc:
                    raise SourceError(f"cannot write reject file {self.path}: {exc}") from exc
            self._file.write(reject.raw.rstrip(b"\r\n") + b"\n")
            wrote = True
        if wrote and self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
