"""What can go wrong while ingesting, as one exception tree::

    IngestError                 anything that stops an ingestion run (the CLI prints it)
    ├── SourceError             a source cannot be opened or read: missing file,
    │                           unreachable database, no ``cdr`` table (driver and OS
    │                           errors are translated here with ``raise ... from exc``)
    ├── DirectoryError          the TOML directory (projects, users, trunks...) is invalid
    └── LayoutError             a file's layout cannot be recognised (no line of it looks
                                like any Asterisk CDR layout, or ``--columns`` is wrong)

A bad *line* is not an exception that stops anything: it becomes a :class:`Reject`
(file, line number, reason, the raw bytes), written to the reject file and reported, and
the import goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DirectoryError", "IngestError", "LayoutError", "Reject", "SourceError"]


class IngestError(Exception):
    """An ingestion run cannot go on."""


class SourceError(IngestError):
    """A source (file, database, table) cannot be opened or read."""


class DirectoryError(IngestError):
    """The directory file is invalid."""


class LayoutError(IngestError):
    """A file's CSV layout cannot be recognised."""


@dataclass(frozen=True)
class Reject:
    """A line that could not be imported: where it is, why, and what it was."""

    file: str
    line: int
    reason: str
    raw: bytes

    def __str__(self) -> str:
        if not self.line:  # about the whole file
            return f"{self.file}: {self.reason}"
        return f"{self.file}:{self.line}: {self.reason}"
