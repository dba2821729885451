"""Reading a growing log file line by line, across rotation and truncation.

:class:`FileTail` hands out complete lines (a partial last line waits for its newline)
with the :class:`~cdrapi.ingest.checkpoint.Position` after them. When it reaches the end
it checks the path: a different inode there means the file was rotated (the old one is
finished, then the new one read from its start); the same inode with fewer bytes than
read, or other first bytes, means it was truncated (read again from the start).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cdrapi.ingest.checkpoint import HEAD_BYTES, Position
from cdrapi.ingest.errors import SourceError

__all__ = ["Chunk", "FileTail"]


@dataclass
class Chunk:
    """Complete lines read at once: their bytes, the number of the first, and the
    position after the last."""

    data: bytes
    first_line: int
    position: Position


def _find_rotated(path: Path, dev: int, ino: int) -> Path | None:
    """A file next to ``path`` with that device and inode (``Master.csv.1`` and the like)."""
    try:
        with os.scandir(path.parent) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if info.st_ino == ino and info.st_dev == dev and entry.is_file():
                    return Path(entry.path)
    except OSError:
        return None
    return None


class FileTail:
    """Complete lines of ``path`` from ``position`` on (from the start without one)."""

    def __init__(self, path: str | Path, position: Position | None = None) -> None:
        self.path = Path(path)
        self._file: BinaryIO | None = None
        self._draining = False  # reading a rotated-away file to its end
        self._buffer = b""
        self.position = Position(str(self.path), 0, 0)
        self._open(position)

    def _open_file(self, path: Path) -> BinaryIO | None:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def _start(self, handle: BinaryIO, path: Path) -> None:
        info = os.fstat(handle.fileno())
        self._file, self._buffer = handle, b""
        self.position = Position(str(path), info.st_dev, info.st_ino, 0, 0, "")
        self._note_head()

    def _head(self, handle: BinaryIO, length: int) -> str:
        return os.pread(handle.fileno(), length, 0).hex()

    def _note_head(self) -> None:
        assert self._file is not None
        if len(self.position.head) < 2 * HEAD_BYTES:
            self.position.head = self._head(self._file, HEAD_BYTES)

    def _same(self, handle: BinaryIO, saved: Position) -> bool:
        info = os.fstat(handle.fileno())
        return (
            (info.st_dev, info.st_ino) == (saved.dev, saved.ino)
            and info.st_size >= saved.offset
            and self._head(handle, len(saved.head) // 2) == saved.head
        )

    def _open(self, saved: Position | None) -> None:
        handle = self._open_file(self.path)
        if saved is not None:
            if handle is not None and self._same(handle, saved):
                self._resume(handle, saved)
                return
            rotated = _find_rotated(self.path, saved.dev, saved.ino)
            old = self._open_file(rotated) if rotated else None
            if old is not None and rotated is not None and self._same(old, saved):
                if handle is not None:
                    handle.close()
                self._resume(old, saved)
                self._draining = True
                return
            if old is not None:
                old.close()
        if handle is None:
            if not self.path.parent.is_dir():
                raise SourceError(f"cannot read {self.path}: no such directory")
            return  # not there yet: tailing waits for it
        self._start(handle, self.path)

    def _resume(self, handle: BinaryIO, saved: Position) -> None:
        self._file, self._buffer = handle, b""
        handle.seek(saved.offset)
        self.position = Position(**{**saved.__dict__, "path": str(self.path)})

    def read(self, size: int = 1 << 22, final: bool = False) -> Chunk | None:
        """Up to about ``size`` bytes of complete lines, or ``None`` at the end for now.

        ``final``: the file is complete (no follow), so a last line without a newline
        counts too.
        """
        while True:
            if self._file is None:
                handle = self._open_file(self.path)
                if handle is None:
                    return None
                self._start(handle, self.path)
            assert self._file is not None
            data = self._file.read(size)
            if data:
                self._buffer += data
                cut = self._buffer.rfind(b"\n") + 1
                if cut:
                    return self._take(cut)
                continue
            if self._buffer and (final or self._draining):
                return self._take(len(self._buffer))
            if final or not self._switched():
                return None

    def _take(self, cut: int) -> Chunk:
        lines, self._buffer = self._buffer[:cut], self._buffer[cut:]
        first = self.position.line + 1
        self.position.offset += cut
        self.position.line += lines.count(b"\n") + (not lines.endswith(b"\n"))
        self._note_head()
        return Chunk(lines, first, Position(**self.position.__dict__))

    def _switched(self) -> bool:
        """At the end: whether the file was rotated or truncated (and reading goes on)."""
        assert self._file is not None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            info = None
        current = os.fstat(self._file.fileno())
        moved = info is not None and (info.st_dev, info.st_ino) != (current.st_dev, current.st_ino)
        if moved and not self._draining:  # rotated: first read what was added to the old one
            self._draining = True
            return True
        if self._draining:
            self._file.close()
            self._file, self._draining = None, False
            handle = self._open_file(self.path)
            if handle is not None:
                self._start(handle, self.path)
            return handle is not None
        consumed = self.position.offset + len(self._buffer)
        head = self.position.head
        if current.st_size < consumed or self._head(self._file, len(head) // 2) != head:
            self._file.seek(0)
            self._buffer = b""
            self.position.offset = self.position.line = 0
            self.position.head = ""
            self._note_head()
            return True
        return False

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
