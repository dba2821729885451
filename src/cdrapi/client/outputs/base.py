"""What every output does, and the file outputs' staging.

An output's life in a pull::

    resumed = output.open(append=..., resume=token_or_None, durable=...)
    output.write(records) ...           # a page at a time, in id order
    token = output.checkpoint()         # now durable: a token to resume from (files),
                                        # or None: committed for good (databases)
    prepared = output.prepare()         # the finished file, ready to publish (or None)
    output.publish(prepared)            # rename it over the target; clean staging up
    output.close()                      # always; keeps staging for a later resume

File outputs never write the target in place: records go to a staging file beside it
(``<target>.part``), and only a finished file is renamed over the target, so a pull that
is interrupted leaves the old file whole (or none) and never a half-written one.
With ``append`` the new records follow those already in the target.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from cdrapi.client.errors import OutputError
from cdrapi.client.exchange import Record
from cdrapi.client.state import fsync_directory

__all__ = ["Output", "StreamOutput", "publish_file"]


class Output(ABC):
    """Where pulled records go."""

    target: str
    """What the user named: a path or a database URL."""

    @property
    def name(self) -> str:
        """The target as it may be shown (no password)."""
        return self.target

    @abstractmethod
    def open(self, *, append: bool, resume: Mapping[str, Any] | None, durable: bool) -> bool:
        """Get ready to write; return True when continuing from ``resume``.

        ``append``: keep what the target holds. ``durable``: :meth:`checkpoint` will be
        called (a resumable pull); when false only :meth:`prepare` will be.
        """

    @abstractmethod
    def write(self, records: Sequence[Record]) -> None:
        """Add records (in id order, after every record written before)."""

    @abstractmethod
    def checkpoint(self) -> dict[str, Any] | None:
        """Make everything written durable; a token to resume from, or None if committed."""

    def prepare(self) -> str | None:
        """Finish writing; the path of the file to publish, or None if nothing to publish."""
        self.checkpoint()
        return None

    def publish(self, prepared: str | None) -> None:
        """Put the prepared file in place of the target, durably, and drop staging."""
        if prepared is not None:
            publish_file(prepared, self.target)

    @abstractmethod
    def close(self) -> None:
        """Release files and connections; keep staging files for a resume."""

    def discard(self) -> None:
        """Close and remove staging files (the pull will not be resumed)."""
        self.close()


def publish_file(prepared: str, target: str) -> None:
    """Rename ``prepared`` over ``target`` and make the rename durable."""
    try:
        os.replace(prepared, target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc}") from exc
    fsync_directory(Path(target).resolve().parent)


class StreamOutput(Output):
    """A text format appended to a staging file (JSONL, CSV); resumes by byte offset."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.target = os.fspath(path)
        self.path = Path(path)
        self.staging = self.path.with_name(self.path.name + ".part")
        self._file: IO[bytes] | None = None

    def header(self) -> bytes:
        """What a new file starts with."""
        return b""

    @abstractmethod
    def encode(self, records: Sequence[Record]) -> bytes:
        """The bytes for ``records``."""

    def open(self, *, append: bool, resume: Mapping[str, Any] | None, durable: bool) -> bool:
        try:
            if resume and resume.get("path") == str(self.staging) and self._resumable(resume):
                file = open(self.staging, "r+b")  # noqa: SIM115
                file.truncate(int(resume["size"]))
                file.seek(0, os.SEEK_END)
                self._file = file
                return True
            if append and self.path.exists():
                shutil.copyfile(self.path, self.staging)
                self._file = open(self.staging, "ab")  # noqa: SIM115
            else:
                self._file = open(self.staging, "wb")  # noqa: SIM115
                self._file.write(self.header())
        except OSError as exc:
            raise OutputError(f"cannot write {self.staging}: {exc}") from exc
        return False

    def _resumable(self, resume: Mapping[str, Any]) -> bool:
        try:
            return self.staging.stat().st_size >= int(resume["size"])
        except (OSError, KeyError, TypeError, ValueError):
            return False

    def _opened(self) -> IO[bytes]:
        if self._file is None:
            raise RuntimeError("output is not open")
        return self._file

    def write(self, records: Sequence[Record]) -> None:
        try:
            self._opened().write(self.encode(records))
        except OSError as exc:
            raise OutputError(f"cannot write {self.staging}: {exc}") from exc

    def checkpoint(self) -> dict[str, Any]:
        file = self._opened()
        try:
            file.flush()
            os.fsync(file.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write {self.staging}: {exc}") from exc
        return {"path": str(self.staging), "size": file.tell()}

    def prepare(self) -> str:
        self.checkpoint()
        self.close()
        return str(self.staging)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close()
        self.staging.unlink(missing_ok=True)
