"""Where a file went after logrotate, and what was rotated after it.

logrotate renames ``Master.csv`` to ``Master.csv.1`` (or ``Master.csv-20260701`` with
``dateext``), compresses it at once (``compress``) or at the next rotation
(``delaycompress``: ``Master.csv.2.gz``), or copies it and empties the original
(``copytruncate``). Between two runs of an import any of that may have happened, more
than once. :func:`locate` finds the file a saved position was read from: at its path
(same inode, same content), else next to it by inode (renamed), else next to it by
content (compressed or copied: a new inode). :func:`rotated_after` lists the rotated
files written after that one (rotations the import never saw), to be read whole.

Only names logrotate gives are considered: the path's name, then ``.N``, ``-DATE`` or
``.DATE`` (digits, ``-``, ``_``), then optionally ``.gz``/``.bz2``/``.xz``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cdrapi.ingest.checkpoint import Position
from cdrapi.ingest.logfile import COMPRESSED, LogFile

__all__ = ["locate", "rotated_after", "rotations"]

_SUFFIX = re.compile(r"(?:[.-]\d[\d_-]*)?(?:" + "|".join(re.escape(s) for s in COMPRESSED) + r")?")


def rotations(path: Path) -> list[Path]:
    """The rotated copies of ``path`` next to it, oldest (last written) first."""
    found: list[tuple[float, str, Path]] = []
    try:
        with os.scandir(path.parent) as entries:
            for entry in entries:
                name = entry.name
                if name == path.name or not name.startswith(path.name):
                    continue
                if not _SUFFIX.fullmatch(name, len(path.name)) or not entry.is_file():
                    continue
                found.append((entry.stat().st_mtime, name, Path(entry.path)))
    except OSError:
        return []
    return [p for _, _, p in sorted(found)]


def _holds(file: LogFile, saved: Position) -> bool:
    return file.holds(bytes.fromhex(saved.head), saved.offset, bytes.fromhex(saved.tail))


def locate(path: Path, saved: Position, at_path: bool = True) -> LogFile | None:
    """The file ``saved`` was read from, open (a compressed one at ``saved.offset``):
    ``path`` itself (``at_path``), a file next to it with its inode, or one that holds
    its content up to the offset. ``None`` when it is nowhere."""
    if at_path:
        file = LogFile.open(path)
        if file is not None:
            if file.identity() == (saved.dev, saved.ino) and _holds(file, saved):
                return file
            file.close()
    candidates = rotations(path)
    for candidate in candidates:  # renamed: the same inode
        try:
            info = candidate.stat()
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == (saved.dev, saved.ino):
            file = LogFile.open(candidate)
            if file is not None and _holds(file, saved):
                return file
            if file is not None:
                file.close()
    if saved.offset == 0:
        return None  # nothing was read from it: nothing to find
    for candidate in sorted(candidates, key=lambda p: p.suffix in COMPRESSED):
        file = LogFile.open(candidate)  # compressed or copied: the same content
        if file is not None and _holds(file, saved):
            return file
        if file is not None:
            file.close()
    return None


def rotated_after(path: Path, found: Path, skip: set[tuple[int, int]]) -> list[Path]:
    """Rotated copies of ``path`` last written after ``found`` (which held a saved
    position), oldest first: whole files of rotations that happened after it. Files
    whose (device, inode) is in ``skip`` (being read already) are left out."""
    try:
        since = found.stat().st_mtime
    except OSError:
        return []
    after = []
    for candidate in rotations(path):
        try:
            info = candidate.stat()
        except OSError:
            continue
        if candidate == found or (info.st_dev, info.st_ino) in skip:
            continue
        if info.st_mtime > since:
            after.append(candidate)
    return after
