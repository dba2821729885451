"""HTTP byte ranges (RFC 9110 §14) for recordings: which part of a file a request gets.

Starlette's :class:`~starlette.responses.FileResponse` answered a malformed ``Range`` (such
as ``bytes=5-2``) with 400 in ``text/plain``; RFC 9110 says a server ignores an invalid
or unknown-unit ``Range`` and sends the whole file, and answers 416 only when the ranges
are valid but none lies within the file. :func:`parse_range` decides that, and
:class:`RangedFile` hands Starlette only ranges it will serve as they are.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

__all__ = ["MAX_RANGES", "RangeNotSatisfiable", "RangedFile", "parse_range"]

MAX_RANGES = 100  # more is a sign of abuse (RFC 9110 §14.2): the whole file instead

_SPEC = re.compile(r"([0-9]{1,19})-([0-9]{0,19})|-([0-9]{1,19})")


class RangeNotSatisfiable(Exception):
    """The ranges are valid, and none of them overlaps the file."""


def parse_range(value: str, size: int) -> list[tuple[int, int]] | None:
    """The ``(first, last)`` byte positions (inclusive) that ``value`` selects of a file of
    ``size`` bytes, or None when the header is to be ignored (another unit, bad syntax,
    more than :data:`MAX_RANGES`). Raises :class:`RangeNotSatisfiable`."""
    unit, equals, ranges = value.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip(" \t") for spec in ranges.split(",", MAX_RANGES)]
    if len(specs) > MAX_RANGES:
        return None
    chosen: list[tuple[int, int]] = []
    for spec in specs:
        if not spec:
            continue  # empty list elements are allowed (RFC 9110 §5.6.1)
        match = _SPEC.fullmatch(spec)
        if match is None:
            return None
        first, last, suffix = match.groups()
        if suffix is not None:
            length = int(suffix)
            if length and size:
                chosen.append((max(size - length, 0), size - 1))
            continue
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None  # invalid: the whole header is ignored
        if start < size:
            chosen.append((start, min(end, size - 1)))
    if not chosen:
        if any(specs):
            raise RangeNotSatisfiable(value)
        return None
    return chosen


class RangedFile(FileResponse):
    """A FileResponse that serves ``ranges`` (from :func:`parse_range`) or the whole file,
    whatever the request's own ``Range`` header says."""

    def __init__(
        self,
        path: Path,
        stat: os.stat_result,
        media_type: str,
        ranges: list[tuple[int, int]] | None,
    ) -> None:
        super().__init__(path, media_type=media_type, stat_result=stat)
        self.ranges = ranges

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(name, value) for name, value in scope["headers"] if name != b"range"]
        if self.ranges:
            spec = ",".join(f"{first}-{last}" for first, last in self.ranges)
            headers.append((b"range", f"bytes={spec}".encode("ascii")))
        await super().__call__({**scope, "headers": headers}, receive, send)
