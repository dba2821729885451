"""Reading a growing log file line by line, across rotation and truncation.

:class:`FileTail` hands out complete lines (a partial last line waits for its newline)
with the :class:`~cdrapi.ingest.checkpoint.Position` after them. When it reaches the end
of the file it checks the path:

- another file there (another inode): the file was rotated. The new one is read from its
  start, and the old one stays open: a writer that still holds it (Asterisk's logger until
  it reopens its files) may add lines to it. Its lines come first (what it held when the
  rotation was seen is read before the new file), and it is closed once nothing was added
  to it for ``grace`` seconds (:data:`ROTATED_GRACE`); a last line without a newline
  counts then.
- the same file, with fewer bytes than were read or other first bytes: it was truncated
  (copytruncate) and is read again from its start.

The position handed out is the current file's, with the rotated files still open in
``rotated``, each at its own offset: a restart resumes all of them, so no line is lost or
read twice.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from cdrapi.ingest.checkpoint import HEAD_BYTES, Position
from cdrapi.ingest.errors import SourceError

__all__ = ["ROTATED_GRACE", "Chunk", "FileTail"]

#: Seconds a rotated-away file is still read after the last line added to it.
ROTATED_GRACE = 10.0


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


def _open_file(path: Path) -> BinaryIO | None:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _head(handle: BinaryIO, length: int) -> str:
    return os.pread(handle.fileno(), length, 0).hex()


def _identity(handle: BinaryIO) -> tuple[int, int]:
    info = os.fstat(handle.fileno())
    return info.st_dev, info.st_ino


class _Reader:
    """An open file read from ``position`` on, and the partial line read after it."""

    def __init__(self, handle: BinaryIO, position: Position) -> None:
        self.handle, self.position, self.partial = handle, position, b""
        self.active = time.monotonic()  # when it was opened or last gave data
        handle.seek(position.offset)
        self._note_head()

    @classmethod
    def start(cls, handle: BinaryIO, path: Path) -> _Reader:
        return cls(handle, Position(str(path), *_identity(handle)))

    @classmethod
    def resume(cls, path: Path | None, saved: Position) -> _Reader | None:
        """``path`` at the offset of ``saved``, if it is that file (and not shorter)."""
        handle = _open_file(path) if path is not None else None
        if handle is None:
            return None
        if (
            _identity(handle) != (saved.dev, saved.ino)
            or os.fstat(handle.fileno()).st_size < saved.offset
            or _head(handle, len(saved.head) // 2) != saved.head
        ):
            handle.close()
            return None
        return cls(handle, replace(saved, path=str(path), rotated=[]))

    def take(self, size: int, whole: bool) -> tuple[bytes, int] | None:
        """The complete lines read on (with ``whole``, a last partial one too) and the
        number of the first; ``None`` at the end."""
        while data := self.handle.read(size):
            self.active = time.monotonic()
            self.partial += data
            cut = self.partial.rfind(b"\n") + 1
            if cut:
                return self._cut(cut)
        if self.partial and whole:
            return self._cut(len(self.partial))
        return None

    def _cut(self, cut: int) -> tuple[bytes, int]:
        lines, self.partial = self.partial[:cut], self.partial[cut:]
        first = self.position.line + 1
        self.position.offset += cut
        self.position.line += lines.count(b"\n") + (not lines.endswith(b"\n"))
        self._note_head()
        return lines, first

    def _note_head(self) -> None:
        if len(self.position.head) < 2 * HEAD_BYTES:
            self.position.head = _head(self.handle, HEAD_BYTES)

    def truncated(self) -> bool:
        """Whether the file is now shorter than what was read, or begins otherwise."""
        head = self.position.head
        size = os.fstat(self.handle.fileno()).st_size
        return size < self.position.offset + len(self.partial) or (
            _head(self.handle, len(head) // 2) != head
        )

    def restart(self) -> None:
        """Read again from the start (the file was truncated)."""
        self.handle.seek(0)
        self.partial = b""
        self.position = Position(self.position.path, self.position.dev, self.position.ino)
        self._note_head()


class FileTail:
    """Complete lines of ``path`` from ``position`` on (from the start without one).

    ``grace``: seconds a rotated-away file is still read after its last line.
    """

    def __init__(
        self, path: str | Path, position: Position | None = None, grace: float = ROTATED_GRACE
    ) -> None:
        self.path, self.grace = Path(path), grace
        self._current: _Reader | None = None  # the file at the path (or last there)
        self._rotated: list[_Reader] = []  # rotated away and still read, oldest first
        if position is not None:
            # where it stopped: at the path, or rotated away since (then it is current
            # until its end, when the file now at the path is seen as a rotation)
            self._current = _Reader.resume(self.path, position) or _Reader.resume(
                _find_rotated(self.path, position.dev, position.ino), position
            )
            for saved in position.rotated:
                found = _Reader.resume(_find_rotated(self.path, saved.dev, saved.ino), saved)
                if found is not None:
                    self._rotated.append(found)
        if self._current is None and not self.path.parent.is_dir():
            raise SourceError(f"cannot read {self.path}: no such directory")

    @property
    def position(self) -> Position:
        """After the lines handed out: the current file's, with the rotated ones."""
        rotated = [replace(reader.position, rotated=[]) for reader in self._rotated]
        if self._current is None:
            return Position(str(self.path), 0, 0, rotated=rotated)
        return replace(self._current.position, rotated=rotated)

    def read(self, size: int = 1 << 22, final: bool = False) -> Chunk | None:
        """Up to about ``size`` bytes of complete lines, or ``None`` at the end for now.

        ``final``: the file is complete (no follow): a last line without a newline counts
        too, and rotated files are read to their end and closed.
        """
        while True:
            taken = self._read_rotated(size, final)
            if taken is not None:
                return taken
            if self._current is None:
                handle = _open_file(self.path)
                if handle is None:
                    return None
                self._current = _Reader.start(handle, self.path)
            taken = self._chunk(self._current.take(size, whole=final))
            if taken is not None:
                return taken
            if not self._switched(final):
                return None

    def _chunk(self, taken: tuple[bytes, int] | None) -> Chunk | None:
        return None if taken is None else Chunk(*taken, self.position)

    def _read_rotated(self, size: int, final: bool) -> Chunk | None:
        """Lines added to a rotated file; the ones quiet for ``grace`` are closed."""
        for reader in list(self._rotated):
            done = final or time.monotonic() - reader.active >= self.grace
            taken = self._chunk(reader.take(size, whole=done))
            if taken is not None:
                return taken
            if done:
                reader.handle.close()
                self._rotated.remove(reader)
        return None

    def _switched(self, final: bool) -> bool:
        """At the end: whether the file was rotated or truncated (and reading goes on)."""
        current = self._current
        assert current is not None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return False  # renamed away and no new file yet: the old one may still grow
        if (info.st_dev, info.st_ino) != (current.position.dev, current.position.ino):
            handle = _open_file(self.path)
            if handle is None:
                return False
            current.active = time.monotonic()
            self._rotated.append(current)
            self._current = _Reader.start(handle, self.path)
            return True
        if not final and current.truncated():
            current.restart()
            return True
        return False

    def close(self) -> None:
        for reader in self._rotated:
            reader.handle.close()
        if self._current is not None:
            self._current.handle.close()
        self._current, self._rotated = None, []
