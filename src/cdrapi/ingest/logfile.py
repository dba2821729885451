"""A log file opened for reading: plain, or compressed by logrotate.

A plain file may still grow, be truncated (``copytruncate``) or be renamed away. A
compressed one (``.gz``, ``.bz2``, ``.xz``: logrotate's ``compress``, with or without
``delaycompress``) is complete and is read decompressed: its offsets and line numbers
are those of the file before it was compressed, so the position saved while reading
``Master.csv`` is still right in ``Master.csv.1.gz``.

A file is recognised by what it holds (:meth:`LogFile.holds`): its first bytes and the
bytes just before the offset reached (a :class:`~cdrapi.ingest.checkpoint.Position`'s
``head`` and ``tail``), whatever its name or inode is now.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO, cast

from cdrapi.ingest.errors import SourceError

__all__ = ["COMPRESSED", "LogFile", "first_line"]


def _gzip(raw: BinaryIO) -> IO[bytes]:
    return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))


def _bz2(raw: BinaryIO) -> IO[bytes]:
    return bz2.BZ2File(raw)


def _xz(raw: BinaryIO) -> IO[bytes]:
    return lzma.LZMAFile(raw)


#: File name suffix -> how to read it decompressed.
COMPRESSED: dict[str, Callable[[BinaryIO], IO[bytes]]] = {
    ".gz": _gzip,
    ".bz2": _bz2,
    ".xz": _xz,
}

_DECODE_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)


class LogFile:
    """``path`` open for reading (see the module docstring)."""

    def __init__(self, path: Path, raw: BinaryIO) -> None:
        self.path, self.raw = path, raw
        opener = COMPRESSED.get(path.suffix)
        self.compressed = opener is not None
        self.stream: IO[bytes] = opener(raw) if opener is not None else raw
        self._head: bytes | None = None

    @classmethod
    def open(cls, path: Path) -> LogFile | None:
        """``path`` opened, or ``None`` when there is no such file."""
        try:
            return cls(path, open(path, "rb"))  # closed by close()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def identity(self) -> tuple[int, int]:
        """Device and inode of the file on disk."""
        info = os.fstat(self.raw.fileno())
        return info.st_dev, info.st_ino

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes on from here (decompressed), ``b""`` at the end."""
        if not self.compressed:
            return self.raw.read(size)
        try:
            return self.stream.read(size)
        except _DECODE_ERRORS as exc:
            raise SourceError(f"cannot read {self.path}: damaged or cut short ({exc})") from exc

    def seek(self, offset: int) -> None:
        """Go to ``offset`` (decompressing up to it in a compressed file)."""
        if not self.compressed:
            self.raw.seek(offset)
            return
        try:
            self.stream.seek(offset)
        except _DECODE_ERRORS as exc:
            raise SourceError(f"cannot read {self.path}: damaged or cut short ({exc})") from exc

    def head(self, length: int) -> bytes:
        """The file's first ``length`` bytes (decompressed), without moving."""
        if not self.compressed:
            return os.pread(self.raw.fileno(), length, 0)
        if self._head is None or len(self._head) < length:
            opener = COMPRESSED[self.path.suffix]
            try:
                with open(self.path, "rb") as raw, opener(raw) as stream:
                    self._head = stream.read(max(length, 4096))
            except _DECODE_ERRORS:
                self._head = b""
        return self._head[:length]

    def size(self) -> int | None:
        """Bytes in a plain file now; ``None`` for a compressed one (not known unread)."""
        return None if self.compressed else os.fstat(self.raw.fileno()).st_size

    def quiet_for(self) -> float:
        """Seconds since the file was last written."""
        return time.time() - os.fstat(self.raw.fileno()).st_mtime

    def holds(self, head: bytes, offset: int, tail: bytes) -> bool:
        """Whether this file begins with ``head`` and has ``tail`` just before ``offset``
        (and so is at least ``offset`` bytes long). Moves a compressed file to ``offset``."""
        if self.head(len(head)) != head:
            return False
        start = offset - len(tail)
        if not self.compressed:
            size = self.size()
            return (
                size is not None
                and size >= offset
                and (not tail or os.pread(self.raw.fileno(), len(tail), start) == tail)
            )
        try:
            self.seek(start)
            found = b""
            while len(found) < len(tail) and (data := self.stream.read(len(tail) - len(found))):
                found += data
        except (SourceError, *_DECODE_ERRORS):
            return False
        return found == tail and (tail != b"" or self._reached(offset))

    def _reached(self, offset: int) -> bool:
        """A compressed file with no tail to compare: whether it is ``offset`` long."""
        try:
            return self.stream.tell() == offset
        except _DECODE_ERRORS:
            return False

    def close(self) -> None:
        if self.compressed:
            self.stream.close()
        self.raw.close()


def first_line(path: str | Path) -> bytes:
    """The first line of ``path`` (decompressed), ``b""`` when it cannot be read."""
    try:
        with open(path, "rb") as raw:
            opener = COMPRESSED.get(Path(path).suffix)
            if opener is None:
                return raw.readline()
            with opener(raw) as stream:
                return stream.readline()
    except _DECODE_ERRORS:
        return b""
