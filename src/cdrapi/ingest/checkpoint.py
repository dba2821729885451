"""Where a file source stopped: its identity and the offset after its last stored line.

A :class:`Position` is saved as JSON in the store's ``checkpoints`` table, in the same
transaction as the rows read up to it (:meth:`cdrapi.store.writer.Writer.write_batch`), so after
a crash the next run starts exactly after the last committed line. The file is known by
device and inode and by its first bytes (``head``): a file with another inode, or whose
first bytes or the bytes just before the offset (``tail``) changed, or that got shorter
than the offset, is a new file (rotated or truncated) and is read from its start; the
rotated-away file is looked for next to it, by its inode or, compressed or copied by
logrotate, by that content (:mod:`cdrapi.ingest.rotation`), and finished first. Rotated
files still being read when the batch was taken (their writers may add lines after the
rotation) are saved with it in ``rotated``, each with its own offset, so a restart
resumes them too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cdrapi.store.writer import Writer

__all__ = ["HEAD_BYTES", "Position", "load_position", "source_name"]

#: How many bytes of a file's start identify it.
HEAD_BYTES = 64


@dataclass
class Position:
    """A file (device, inode, first bytes) and the offset and line number read up to."""

    path: str
    dev: int
    ino: int
    offset: int = 0
    line: int = 0
    head: str = ""  # hex of the file's first bytes (up to HEAD_BYTES)
    tail: str = ""  # hex of the bytes just before ``offset`` (up to HEAD_BYTES)
    rotated: list[Position] = field(default_factory=list)  # rotated away, still read

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Position:
        return cls._from(json.loads(text))

    @classmethod
    def _from(cls, data: dict[str, Any]) -> Position:
        rotated = [cls._from(item) for item in data.pop("rotated", [])]
        known = {name: data[name] for name in _FIELDS if name in data}
        return cls(**known, rotated=rotated)


_FIELDS = ("path", "dev", "ino", "offset", "line", "head", "tail")


def source_name(kind: str, path: str | Path) -> str:
    """The checkpoint key of a file: its kind and absolute path."""
    return f"{kind}:{os.path.abspath(path)}"[:255]


def load_position(store: Writer, source: str) -> Position | None:
    """The position ``store`` saved for ``source``, or ``None`` (never read, or unreadable)."""
    text = store.load_checkpoint(source)
    if text is None:
        return None
    try:
        return Position.loads(text)
    except (ValueError, TypeError):
        return None
