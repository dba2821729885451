"""Line files (CSV, queue_log) into the store: once, or following them as they grow.

A :class:`LineParser`-like object turns a chunk of complete lines into a
:class:`~cdrapi.ingest.batch.Batch`; :func:`file_batches` reads a file from its saved
position and yields batches carrying the position after them; :func:`run_files` commits
them (each batch with its checkpoint, in one transaction).

With ``producer``, a big import (not followed) is parsed in a producer process
(:mod:`cdrapi.producer`) while this one writes. The rows cross the pipe as
:mod:`marshal` data: about 2 us a row in all against about 7 us to parse and derive it
(pickle: about 4 us). On two cores that took bench/ingest_speed.py from about 16.3 s
to about 10.8 s until every line is stored; letting the producer parse up to two
batches ahead of the writer (so that neither waits for the other's slower batches) took
another 0.8 s off. Followed files are parsed here: their batches are small and latency
matters more.
"""

from __future__ import annotations

import gc
import marshal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cdrapi.ingest.batch import AfterRows, Batch, commit
from cdrapi.ingest.checkpoint import Position, load_position, source_name
from cdrapi.ingest.errors import Reject, SourceError
from cdrapi.ingest.follow import FileTail, unread_lines
from cdrapi.ingest.logfile import first_line
from cdrapi.ingest.rejects import RejectFile
from cdrapi.ingest.summary import Summary
from cdrapi.producer import can_fork, produced
from cdrapi.store.writer import Writer

if TYPE_CHECKING:
    from cdrapi.ingest.recovery import Recovery

__all__ = ["ChunkParser", "FileSource", "file_batches", "run_files"]

#: Seconds between looks at a followed file that had nothing new.
POLL = 0.1

#: Bytes read (and parsed into one batch) at a time.
CHUNK = 1 << 22

#: Batches a producer process may have parsed that the writer has not taken yet.
AHEAD = 2


class ChunkParser(Protocol):
    """Parses the complete lines of one file."""

    def start_file(self, first_line: bytes, path: str) -> None:
        """A (new) file, at ``path``, begins with ``first_line`` (for header rows)."""

    def parse(self, data: bytes, first_line: int) -> Batch:
        """The batch for ``data`` (complete lines, the first numbered ``first_line``)."""


@dataclass
class FileSource:
    """A file, its kind (checkpoint namespace) and its parser."""

    path: Path
    kind: str
    parser: ChunkParser

    @property
    def name(self) -> str:
        return source_name(self.kind, self.path)


def file_batches(
    source: FileSource, position: Position | None, follow: bool, chunk: int = CHUNK
) -> Iterator[Batch | None]:
    """Batches of ``source`` from ``position``; with ``follow``, ``None`` when idle.

    Read once to its end, a file's first batch is a small one, so that a writer waiting
    for it (see :func:`run_files`) starts sooner. A file's warnings (a saved file not
    found after a rotation) come in the first batch (an empty one if need be).
    """
    tail = FileTail(source.path, position)
    size = chunk if follow else max(1, chunk // 16)
    warnings = [Reject(str(source.path), 0, text, b"") for text in tail.warnings]
    reading = ""  # the file the last chunk came from
    try:
        while True:
            read = tail.read(size, final=not follow)
            size = chunk
            if read is None:
                if warnings:
                    yield Batch(warnings=warnings)
                    warnings = []
                if not follow:
                    return
                yield None
                continue
            if read.first_line == 1:
                source.parser.start_file(read.data.split(b"\n", 1)[0], read.file)
            elif read.file != reading:  # resumed, or back to a rotated file: its header
                source.parser.start_file(first_line(read.file), read.file)
            reading = read.file
            batch = source.parser.parse(read.data, read.first_line)
            batch.checkpoint = (source.name, read.position.dumps())
            batch.warnings[:0], warnings = warnings, []
            yield batch
    finally:
        tail.close()


def run_files(
    writer: Writer,
    sources: Sequence[FileSource],
    *,
    follow: bool,
    rejects: RejectFile,
    summary: Summary,
    after_rows: AfterRows | None = None,
    from_start: bool = False,
    stop: threading.Event | None = None,
    on_batch: Callable[[Summary], None] | None = None,
    producer: bool = False,
    recovery: Recovery | None = None,
) -> Summary:
    """Read ``sources`` into the store, each batch committed with its checkpoint.

    Without ``follow`` each file is read to its end, in turn; with ``producer``, files
    bigger than two chunks are parsed in a producer process (see above); the parsers'
    ``recovery`` then leaves its linkedid step to this process (the two processes'
    loads even out: :meth:`~cdrapi.ingest.recovery.Recovery.group_batch`). With
    ``follow``, all are followed until ``stop`` is set (or forever).
    """
    started = time.perf_counter()
    streams: list[Iterator[Batch | None]] = []
    for source in sources:
        if not follow and not source.path.is_file():
            raise SourceError(f"cannot read {source.path}: no such file")
        position = None if from_start else load_position(writer, source.name)
        streams.append(file_batches(source, position, follow))

    group: Callable[[Batch], None] | None = None

    def store(batch: Batch) -> None:
        if group is not None:
            group(batch)
        stored = commit(writer, batch, rejects, after_rows)
        summary.add(batch.lines, stored, len(batch.rows), len(batch.rejects))
        summary.note(batch.directions, batch.warnings)
        summary.seconds = time.perf_counter() - started
        if on_batch is not None:
            on_batch(summary)

    if not follow:
        size = sum(source.path.stat().st_size for source in sources)
        if producer and size > 2 * CHUNK and can_fork():
            if recovery is not None:  # the forked producer keeps the setting too
                recovery.calls_in_writer, group = True, recovery.group_batch
            batches: Iterator[Batch | None] = _produced(streams)
        else:
            batches = (batch for stream in streams for batch in stream)
        # Storing makes no reference cycles worth collecting, and the collector's passes
        # over each batch's rows cost 3k instructions a line: off until the files are read.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with writer.long_import():  # fewer (syncing) checkpoints of SQLite's log
                for batch in batches:
                    if batch is not None:
                        store(batch)
        finally:
            if collecting:
                gc.enable()
        for source in sources:  # a last line still being written waits for the next run
            summary.left += unread_lines(load_position(writer, source.name), source.path)
        summary.seconds = time.perf_counter() - started
        return summary
    try:
        while stop is None or not stop.is_set():
            busy = False
            for stream in streams:
                batch = next(stream)
                if batch is not None:
                    store(batch)
                    busy = True
            if not busy:
                if stop is not None:
                    stop.wait(POLL)
                else:
                    time.sleep(POLL)
    finally:
        for stream in streams:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    summary.seconds = time.perf_counter() - started
    return summary


def _produced(streams: Sequence[Iterator[Batch | None]]) -> Iterator[Batch]:
    """The batches of ``streams`` (not followed), parsed by a producer process
    (:func:`cdrapi.producer.produced`).

    An error in the producer is raised here after the batches before it, as it would be
    without a producer. The generators of ``streams`` have not started: the child runs
    them (and never uses the store's engine). Parsing makes no reference cycles, so the
    child runs without the cyclic garbage collector (its passes over the growing
    recovery state cost 0.6 us a line at a million lines).
    """

    def batches() -> Iterator[Batch]:
        for stream in streams:
            for batch in stream:
                if batch is not None:
                    yield batch

    return produced(
        batches,
        what="the parsing process",
        ahead=AHEAD,
        encode=_encode,
        decode=_decode,
        collect_cycles=False,
    )


def _encode(batch: Batch) -> tuple[bytes, Batch]:
    """A batch as it crosses the pipe: its rows as marshal data, the rest pickled."""
    return marshal.dumps(batch.rows), replace(batch, rows=[])


def _decode(rows: bytes, batch: Batch) -> Batch:
    batch.rows = marshal.loads(rows)
    return batch
