"""A producer process: items made in a forked child while this process uses them.

Big CSV imports (:mod:`cdrapi.ingest.files`: the child parses and derives, this process
writes) and big demo runs (:mod:`cdrapi.demo`: the child makes records, this process
inserts them) keep two cores busy this way. :func:`produced` forks a child that runs
``make()`` and sends each item it yields through a pipe; this process gets them, in
order, from the iterator :func:`produced` returns. What it guarantees:

- The child dies with this process: it closes its copy of the pipe's reading end (so
  a reader gone breaks the pipe) and, on Linux, asks for ``SIGKILL`` when its parent
  dies (else, blocked on a full pipe, it would live on after a ``kill -9`` of the
  parent, holding the parent's stdout open).
- An error in ``make()`` is raised by the iterator, after the items made before it, as
  it would be without a child; a child that dies without saying why (killed, or its
  error cannot be sent) is a :class:`RuntimeError` with its exit code.
- No zombie: the iterator, run to its end or closed early (the child is killed then:
  nobody will read the rest), waits for the child.

``fork`` is used: the child needs only what this process has in memory (``make`` is
not pickled, and generators made here but not started are run there), and unlike
``spawn`` it does not re-run the caller's main script. The child never touches what it
inherited but did not make (a store's engine) and exits without this process's cleanup.

Items cross the pipe as two parts, ``encode(item)`` -> (bytes, a picklable rest), so
bulky rows go as :mod:`marshal` data (about 2 us a row against 4 us pickled) and the
rest of an item is pickled. A sending thread in the child sends them while its main
thread makes the next ones (up to ``ahead`` made and not yet sent).
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
import traceback
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection as Pipe
from typing import Any, TypeVar

__all__ = ["can_fork", "produced"]

T = TypeVar("T")

#: An item as it crosses the pipe: its bytes (never empty) and the rest of it (pickled).
Parts = tuple[bytes, Any]


def can_fork() -> bool:
    """Whether a producer process helps here: a second CPU, and ``fork`` to start it."""
    return (os.cpu_count() or 1) > 1 and "fork" in multiprocessing.get_all_start_methods()


def _marshalled(item: Any) -> Parts:
    return marshal.dumps(item), None


def _unmarshalled(data: bytes, _rest: Any) -> Any:
    return marshal.loads(data)


def produced(
    make: Callable[[], Iterable[T]],
    *,
    what: str,
    ahead: int,
    encode: Callable[[T], Parts] = _marshalled,
    decode: Callable[[bytes, Any], T] = _unmarshalled,
    collect_cycles: bool = True,
) -> Iterator[T]:
    """The items of ``make()``, made in a producer process (see above).

    ``what`` names the child in the error when it dies (``"the parsing process"``);
    ``ahead`` is how many items it may have made that are not sent yet. ``encode`` and
    ``decode`` carry an item across (by default the item is :mod:`marshal` data:
    tuples, lists, strings, numbers, None). With ``collect_cycles`` False the child runs
    without the cyclic garbage collector (for a ``make`` that builds no reference
    cycles: the collector's passes over a growing state cost time for nothing).
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_produce,
        args=(make, encode, ahead, collect_cycles, send, receive, os.getpid()),
        daemon=True,
    )
    child.start()
    send.close()
    finished = False
    try:
        try:
            while data := receive.recv_bytes():
                yield decode(data, receive.recv())
            error = receive.recv()
        except EOFError:  # the child died without saying why
            child.join()
            error = RuntimeError(f"{what} failed (exit code {child.exitcode})")
        finished = True
        if error is not None:
            raise error
    finally:
        if not finished:
            child.kill()  # stopped early: nobody will read the rest
        child.join()
        receive.close()


def _die_with_parent(parent: int) -> None:
    """End this process when ``parent`` dies (Linux: a parent-death signal; elsewhere
    the sending thread's broken pipe does it).

    The signal comes when the parent's thread that forked this process ends, which is
    the parent's end when that is its main thread.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # died before the signal was set
        os._exit(1)


def _produce(
    make: Callable[[], Iterable[T]],
    encode: Callable[[T], Parts],
    ahead: int,
    collect_cycles: bool,
    pipe: Pipe,
    receive: Pipe,
    parent: int,
) -> None:
    """The child: make the items, encode them and hand them to the sending thread, then
    the end: ``b""`` and the error ``make()`` raised (or None)."""
    receive.close()
    _die_with_parent(parent)
    if not collect_cycles:
        gc.disable()
    sys.setswitchinterval(0.0005)  # the sending thread waits less for its turn
    outbox: queue.Queue[Parts] = queue.Queue(ahead)
    # a daemon: if this thread dies without the end, the process ends (the parent sees why)
    sender = threading.Thread(target=_send, args=(outbox, pipe), daemon=True)
    sender.start()
    error: BaseException | None = None
    try:
        for item in make():
            parts = encode(item)
            if not parts[0]:
                raise ValueError("an item encoded as no bytes (b'' ends the items)")
            outbox.put(parts)
    except Exception as exc:  # handed to the parent, which raises it after the items
        error = exc
    outbox.put((b"", error))
    sender.join()


def _send(outbox: queue.Queue[Parts], pipe: Pipe) -> None:
    """The child's sending thread: each item's bytes, then the rest of it; after the
    last, ``b""`` and the error. Ends the process if it cannot (the parent sees the pipe
    close early and reports the child failed)."""
    try:
        while True:
            data, rest = outbox.get()
            pipe.send_bytes(data)
            pipe.send(rest)
            if not data:
                pipe.close()
                return
    except BaseException as exc:
        if not isinstance(exc, OSError):  # not just the parent gone: say what happened
            traceback.print_exc()
        os._exit(1)  # the making thread would wait for this one forever
