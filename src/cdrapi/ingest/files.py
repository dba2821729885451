"""Line files (CSV, queue_log) into the store: once, or following them as they grow.

A :class:`LineParser`-like object turns a chunk of complete lines into a
:class:`~cdrapi.ingest.batch.Batch`; :func:`file_batches` reads a file from its saved
position and yields batches carrying the position after them; :func:`run_files` commits
them (each batch with its checkpoint, in one transaction).

With ``producer``, a big import (not followed) is parsed in a producer process while
this one writes. The rows cross the pipe as :mod:`marshal` data: about 2 us a row in all
against about 7 us to parse and derive it (pickle: about 4 us). On two cores that took
bench/ingest_speed.py from about 16.3 s to about 10.8 s until every line is stored;
letting the producer parse up to two batches ahead of the writer (so that neither waits
for the other's slower batches) took another 0.8 s off. Followed files are parsed here:
their batches are small and latency matters more.
"""

from __future__ import annotations

import gc
import marshal
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Protocol

from cdrapi.ingest.batch import After, Batch, commit
from cdrapi.ingest.checkpoint import Position, load_position, source_name
from cdrapi.ingest.errors import Reject, SourceError
from cdrapi.ingest.follow import FileTail, unread_lines
from cdrapi.ingest.logfile import first_line
from cdrapi.ingest.rejects import RejectFile
from cdrapi.ingest.summary import Summary
from cdrapi.store.writer import Writer

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
    after: After | None = None,
    from_start: bool = False,
    stop: threading.Event | None = None,
    on_batch: Callable[[Summary], None] | None = None,
    producer: bool = False,
) -> Summary:
    """Read ``sources`` into the store, each batch committed with its checkpoint.

    Without ``follow`` each file is read to its end, in turn; with ``producer``, files
    bigger than two chunks are parsed in a producer process (see above). With ``follow``,
    all are followed until ``stop`` is set (or forever).
    """
    started = time.perf_counter()
    streams: list[Iterator[Batch | None]] = []
    for source in sources:
        if not follow and not source.path.is_file():
            raise SourceError(f"cannot read {source.path}: no such file")
        position = None if from_start else load_position(writer, source.name)
        streams.append(file_batches(source, position, follow))

    def store(batch: Batch) -> None:
        stored = commit(writer, batch, rejects, after)
        summary.add(batch.lines, stored, len(batch.rows), len(batch.rejects))
        summary.note(batch.directions, batch.warnings)
        summary.seconds = time.perf_counter() - started
        if on_batch is not None:
            on_batch(summary)

    if not follow:
        size = sum(source.path.stat().st_size for source in sources)
        if producer and size > 2 * CHUNK and _can_fork():
            batches: Iterator[Batch | None] = _produced(streams)
        else:
            batches = (batch for stream in streams for batch in stream)
        for batch in batches:
            if batch is not None:
                store(batch)
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


def _can_fork() -> bool:
    return (os.cpu_count() or 1) > 1 and "fork" in multiprocessing.get_all_start_methods()


def _die_with_parent(parent: int) -> None:
    """End this process when ``parent`` dies (Linux: a parent-death signal; elsewhere
    the sending thread's broken pipe does it)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # died before the signal was set
        os._exit(1)


def _produce(
    streams: Sequence[Iterator[Batch | None]], pipe: Pipe, receive: Pipe, parent: int
) -> None:
    """Producer process: send each batch of ``streams`` in turn, then the end (below).

    It dies with the writer: it closes its copy of the pipe's reading end (so a writer
    gone breaks the pipe) and asks for a signal when its parent dies (else, blocked
    with full queues, it would live on after a ``kill -9`` of the writer, holding the
    writer's stdout open).

    Batches go through a queue to a sending thread, so parsing goes on while the writer
    is busy with a batch (up to :data:`AHEAD` batches ahead). The process runs without
    the cyclic garbage collector: parsing makes no reference cycles, and the collector's
    passes over the growing recovery state cost 0.6 us a line at a million lines.
    """
    receive.close()
    _die_with_parent(parent)
    gc.disable()
    sys.setswitchinterval(0.0005)  # the sending thread waits less for its turn
    outbox: queue.Queue[tuple[bytes, Batch | BaseException | None]] = queue.Queue(AHEAD)
    sender = threading.Thread(target=_send, args=(outbox, pipe))
    sender.start()
    error: BaseException | None = None
    try:
        for stream in streams:
            for batch in stream:
                if batch is not None:
                    outbox.put((marshal.dumps(batch.rows), replace(batch, rows=[])))
    except Exception as exc:  # handed to the writer, which raises it after the batches
        error = exc
    outbox.put((b"", error))
    sender.join()


def _send(outbox: queue.Queue[tuple[bytes, Batch | BaseException | None]], pipe: Pipe) -> None:
    """The producer's sending thread: each batch's rows, then the rest of it; then
    ``b""`` and the error (or None). Ends the process if it cannot (the writer sees the
    pipe close early and reports the producer failed)."""
    try:
        while True:
            data, rest = outbox.get()
            pipe.send_bytes(data)
            pipe.send(rest)
            if not data:
                pipe.close()
                return
    except BaseException as exc:
        if not isinstance(exc, OSError):  # not just the writer gone: say what happened
            traceback.print_exc()
        os._exit(1)  # the parsing thread would wait for this one forever


def _produced(streams: Sequence[Iterator[Batch | None]]) -> Iterator[Batch]:
    """The batches of ``streams`` (not followed), parsed by a producer process.

    An error in the producer is raised here after the batches before it, as it would be
    without a producer.
    """
    # fork: the generators of ``streams`` have not started; the child runs them (and
    # never uses the store's engine) and exits without running this process's cleanup.
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_produce, args=(streams, send, receive, os.getpid()), daemon=True
    )
    child.start()
    send.close()
    finished = False
    try:
        try:
            while data := receive.recv_bytes():
                batch: Batch = receive.recv()
                batch.rows = marshal.loads(data)
                yield batch
            error = receive.recv()
        except EOFError:  # the producer died without saying why
            child.join()
            error = RuntimeError(f"the parsing process failed (exit code {child.exitcode})")
        finished = True
        if error is not None:
            raise error
    finally:
        if not finished:
            child.kill()  # stopped early: nobody will read the rest
        child.join()
        receive.close()
