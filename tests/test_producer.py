"""The producer process (cdrapi.producer): items come back in order, an error in the
child comes back as that error after the items before it, a dying child is an error,
and the child never outlives the reader (closed early, or killed) nor stays a zombie."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest

from cdrapi.producer import produced

ROOT = Path(__file__).parents[1]


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie not reaped by its parent counts as
    alive: the point is that nobody leaves one)."""
    return not os.path.exists(f"/proc/{pid}")


def ended(pid: int) -> bool:
    """Whether ``pid`` runs no more (ended, or a zombie whose parent is not ours)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        time.sleep(0.01)


def pid_then_numbers(limit: int | None = None) -> Iterator[tuple[int, str]]:
    """The child's pid first, then (n, text of n) pairs: ``limit`` of them, or forever."""
    yield os.getpid(), "pid"
    for n in range(limit) if limit is not None else count():
        yield n, str(n)


def test_items_come_in_order_and_the_child_is_reaped() -> None:
    items = list(produced(lambda: pid_then_numbers(20_000), what="the test child", ahead=2))
    (pid, _), *numbers = items
    assert pid != os.getpid()
    assert numbers == [(n, str(n)) for n in range(20_000)]
    assert gone(pid)


@dataclass
class Parcel:
    rows: list[tuple[int, ...]]
    label: str


def test_an_item_crosses_as_bytes_and_a_pickled_rest() -> None:
    def make() -> Iterator[Parcel]:
        for n in range(50):
            yield Parcel([(n, n * n)] * n, f"parcel {n}")

    def encode(parcel: Parcel) -> tuple[bytes, str]:
        return json.dumps(parcel.rows).encode(), parcel.label

    def decode(data: bytes, label: str) -> Parcel:
        return Parcel([tuple(row) for row in json.loads(data)], label)

    got = list(produced(make, what="the test child", ahead=3, encode=encode, decode=decode))
    assert got == list(make())


def test_an_error_in_the_child_is_raised_after_the_items_before_it() -> None:
    def make() -> Iterator[int]:
        yield from range(10)
        raise LookupError("no call 10 in the file")

    got: list[int] = []
    with pytest.raises(LookupError, match="no call 10 in the file"):
        for item in produced(make, what="the test child", ahead=2):
            got.append(item)
    assert got == list(range(10))


def test_a_child_that_dies_without_a_word_is_an_error_with_its_exit_code() -> None:
    pids: list[int] = []

    def make() -> Iterator[int]:
        yield os.getpid()
        time.sleep(0.2)  # the pid is sent before the end
        os._exit(7)

    with pytest.raises(RuntimeError, match=r"^the test child failed \(exit code 7\)$"):
        for item in produced(make, what="the test child", ahead=2):
            pids.append(item)
    assert len(pids) == 1 and gone(pids[0])


def test_an_item_that_encodes_as_nothing_is_an_error_not_the_end() -> None:
    items = produced(lambda: iter([b"one", b""]), what="the test child", ahead=2,
                     encode=lambda data: (data, None), decode=lambda data, _: data)  # fmt: skip
    assert next(items) == b"one"
    with pytest.raises(ValueError, match="no bytes"):
        next(items)


def test_stopping_early_kills_and_reaps_the_child() -> None:
    items = produced(pid_then_numbers, what="the test child", ahead=2)  # forever
    pid, _ = next(items)
    assert next(items) == (0, "0")
    started = time.monotonic()
    items.close()  # the child, blocked on a full pipe, would wait forever
    assert time.monotonic() - started < 5
    assert gone(pid)


def pid_then_a_long_wait() -> Iterator[int]:
    """The child's pid, then a long time making the next item."""
    yield os.getpid()
    time.sleep(600)


@pytest.mark.parametrize("make", ["pid_then_numbers", "pid_then_a_long_wait"])
def test_the_child_dies_with_its_parent(make: str) -> None:
    """kill -9 of the reading process alone: its child, blocked on a full pipe or busy
    making an item (it would not see the pipe broken), must not live on (holding the
    parent's stdout open)."""
    script = (
        "import sys, time\n"
        f"from tests.test_producer import {make}\n"
        "from cdrapi.producer import produced\n"
        f"items = produced({make}, what='child', ahead=2)\n"
        "first = next(items)\n"
        "print(first[0] if isinstance(first, tuple) else first, flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"},
    )  # fmt: skip
    child = 0
    try:
        assert process.stdout is not None
        child = int(process.stdout.readline())
        assert not ended(child)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        wait_until(lambda: ended(child))
        started = time.monotonic()
        assert process.stdout.read() == b""  # no process holds it open: EOF
        assert time.monotonic() - started < 5
    finally:
        process.kill()
        process.wait()
        if child and not ended(child):  # the test failed: leave no process behind
            os.kill(child, signal.SIGKILL)
