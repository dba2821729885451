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
  (copytruncate) and is read again from its start, after the rest of its copy (found by
  content next to it, :mod:`cdrapi.ingest.rotation`).

Read once (``final``, no follow), a last line without its newline is taken only when the
file has not been written for ``grace`` seconds (an export that ends without one); else
it is being written and is left for the next run, never rejected half-read.

Started from a saved position, the file it names is found where logrotate put it (at the
path, renamed, compressed or copied: :func:`cdrapi.ingest.rotation.locate`) and its rest
is read first, then any file rotated after it, then the file at the path. Where it cannot
be found, :attr:`FileTail.warnings` says so with the number of its last stored line.

The position handed out is the current file's, with the rotated files still open in
``rotated``, each at its own offset: a restart resumes all of them, so no line is lost or
read twice.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from cdrapi.ingest.checkpoint import HEAD_BYTES, Position
from cdrapi.ingest.errors import SourceError
from cdrapi.ingest.logfile import LogFile
from cdrapi.ingest.rotation import locate, rotated_after

__all__ = ["ROTATED_GRACE", "Chunk", "FileTail", "unread_lines"]

#: Seconds a rotated-away file is still read after the last line added to it, and that a
#: file read once must have been left alone for its last line without a newline to count.
ROTATED_GRACE = 10.0


@dataclass
class Chunk:
    """Complete lines read at once: their bytes, the number of the first, the position
    after the last, and the file they were read from."""

    data: bytes
    first_line: int
    position: Position
    file: str = ""


class _Reader:
    """An open file read from ``position`` on, and the partial line read after it."""

    def __init__(self, file: LogFile, position: Position) -> None:
        self.file, self.position, self.partial = file, position, b""
        self.active = time.monotonic()  # when it was opened or last gave data
        file.seek(position.offset)
        self._note_head()

    @classmethod
    def start(cls, file: LogFile) -> _Reader:
        return cls(file, Position(str(file.path), *file.identity()))

    @classmethod
    def found(cls, file: LogFile, saved: Position) -> _Reader:
        """``file`` (where ``saved``'s file is now) at ``saved``'s offset."""
        dev, ino = file.identity()
        return cls(file, replace(saved, path=str(file.path), dev=dev, ino=ino, rotated=[]))

    def take(self, size: int, whole: bool) -> tuple[bytes, int] | None:
        """The complete lines read on (with ``whole``, a last partial one too) and the
        number of the first; ``None`` at the end."""
        while data := self.file.read(size):
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
        end = lines if len(lines) >= HEAD_BYTES else bytes.fromhex(self.position.tail) + lines
        self.position.tail = end[-HEAD_BYTES:].hex()
        self._note_head()
        return lines, first

    def _note_head(self) -> None:
        if len(self.position.head) < 2 * HEAD_BYTES:
            self.position.head = self.file.head(HEAD_BYTES).hex()

    def complete(self, grace: float) -> bool:
        """Whether a last line without a newline is whole: the file is compressed, or
        nobody wrote to it for ``grace`` seconds."""
        return self.file.compressed or self.file.quiet_for() >= grace

    def truncated(self) -> bool:
        """Whether the file is now shorter than what was read, or begins otherwise."""
        size = self.file.size()
        if size is None:
            return False
        head = self.position.head
        return size < self.position.offset + len(self.partial) or (
            self.file.head(len(head) // 2).hex() != head
        )

    def restart(self) -> None:
        """Read again from the start (the file was truncated)."""
        self.file.seek(0)
        self.partial = b""
        self.position = Position(self.position.path, self.position.dev, self.position.ino)
        self._note_head()


class FileTail:
    """Complete lines of ``path`` from ``position`` on (from the start without one).

    ``grace``: seconds a rotated-away file is still read after its last line, and that a
    file read once must be quiet for its last line without a newline to count.
    """

    def __init__(
        self, path: str | Path, position: Position | None = None, grace: float = ROTATED_GRACE
    ) -> None:
        self.path, self.grace = Path(path), grace
        self._current: _Reader | None = None  # the file at the path (or last there)
        self._rotated: list[_Reader] = []  # rotated away and still read, oldest first
        #: What a person should know: a saved file that cannot be found any more.
        self.warnings: list[str] = []
        if position is not None:
            self._resume(position)
        if self._current is None and not self.path.parent.is_dir():
            raise SourceError(f"cannot read {self.path}: no such directory")

    def _resume(self, position: Position) -> None:
        """Find the files of ``position``: rotated ones first (oldest first), then the one
        it was reading, then files rotated after that one (whole), then the path."""
        for saved in position.rotated:
            file = locate(self.path, saved, at_path=False)
            if file is None:
                self._lost(saved)
            else:
                self._rotated.append(_Reader.found(file, saved))
        file = locate(self.path, position)
        if file is None:
            if position.offset:
                self._lost(position)
            return
        if file.path == self.path:
            self._current = _Reader.found(file, position)
            return
        self._rotated.append(_Reader.found(file, position))
        skip = {(r.position.dev, r.position.ino) for r in self._rotated}
        for later in rotated_after(self.path, file.path, skip):
            opened = LogFile.open(later)
            if opened is not None:
                self._rotated.append(_Reader.start(opened))

    def _lost(self, saved: Position) -> None:
        where = "" if saved.path == str(self.path) else f" (as {saved.path})"
        self.warnings.append(
            f"the file read up to line {saved.line:,}{where} was rotated away and no file "
            f"next to {self.path.name}, compressed or not, holds it: lines written to it "
            f"after line {saved.line:,} may be missing. Find it (logrotate's olddir?) and "
            "import it with the same command: lines already stored are skipped"
        )

    @property
    def position(self) -> Position:
        """After the lines handed out: the current file's, with the rotated ones."""
        rotated = [replace(reader.position, rotated=[]) for reader in self._rotated]
        if self._current is None:
            return Position(str(self.path), 0, 0, rotated=rotated)
        return replace(self._current.position, rotated=rotated)

    def read(self, size: int = 1 << 22, final: bool = False) -> Chunk | None:
        """Up to about ``size`` bytes of complete lines, or ``None`` at the end for now.

        ``final``: the file is read once (no follow): rotated files are read to their
        end and closed, and a last line without a newline counts if the file is
        complete (see the module docstring).
        """
        while True:
            taken = self._read_rotated(size, final)
            if taken is not None:
                return taken
            if self._current is None:
                file = LogFile.open(self.path)
                if file is None:
                    return None
                self._current = _Reader.start(file)
            current = self._current
            whole = final and current.complete(self.grace)
            taken = self._chunk(current, current.take(size, whole=whole))
            if taken is not None:
                return taken
            if not self._switched(final):
                return None

    def _chunk(self, reader: _Reader, taken: tuple[bytes, int] | None) -> Chunk | None:
        if taken is None:
            return None
        return Chunk(*taken, self.position, file=reader.position.path)

    def _read_rotated(self, size: int, final: bool) -> Chunk | None:
        """Lines added to a rotated file; the ones quiet for ``grace`` are closed (read
        once: all of them, but for one whose last line is still being written)."""
        for reader in list(self._rotated):
            done = final or time.monotonic() - reader.active >= self.grace
            whole = done and (not final or reader.complete(self.grace))
            taken = self._chunk(reader, reader.take(size, whole=whole))
            if taken is not None:
                return taken
            if done and (whole or not reader.partial):
                reader.file.close()
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
            file = LogFile.open(self.path)
            if file is None:
                return False
            current.active = time.monotonic()
            self._rotated.append(current)
            self._current = _Reader.start(file)
            return True
        if not final and current.truncated():
            copy = locate(self.path, current.position, at_path=False)  # copytruncate
            if copy is not None:
                self._rotated.append(_Reader.found(copy, current.position))
            current.restart()
            return True
        return False

    def close(self) -> None:
        for reader in self._rotated:
            reader.file.close()
        if self._current is not None:
            self._current.file.close()
        self._current, self._rotated = None, []


def unread_lines(position: Position | None, path: str | Path) -> int:
    """Lines (a last one without a newline included) in ``path`` after ``position`` (from
    its start without one), when it is the file the position names: what a run left for
    the next one."""
    if position is not None and position.path != str(path):
        return 0
    file = LogFile.open(Path(path))
    if file is None:
        return 0
    try:
        if file.compressed:
            return 0
        if position is not None and file.identity() != (position.dev, position.ino):
            return 0
        file.seek(position.offset if position is not None else 0)
        rest = file.read(1 << 20)
    finally:
        file.close()
    return rest.count(b"\n") + (bool(rest) and not rest.endswith(b"\n"))
