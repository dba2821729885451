"""``pull``: every matching call from an /api/cdr server into a file or a database.

    result = pull("https://pbx.example.com", token, "calls.parquet",
                  filters={"direction": "IN"}, state="calls.state.json")

Pages are fetched by an :class:`~cdrapi.client.AsyncClient`, several at a time, and written
in id order. Without ``state`` a pull is one-shot: the target is replaced whole when the
pull succeeds and left as it was when it fails. With ``state`` it is incremental: records
after the state's ``last_id`` are added to the target (appended to a file, upserted into a
table), and a pull that is killed resumes where it stopped, exactly once:

1. On start, a ``publishing`` entry means a previous run finished its file but may have
   died before renaming it: the rename is done (if the file is still there) and the
   state advanced.
2. Records are fetched after ``last_id``, or after the checkpoint of an unfinished run
   (whose staging is cut back to that checkpoint first), and written in id order.
3. Every ``checkpoint_seconds`` the output is made durable (fsync or commit) and only
   then does the state record how far: ``last_id`` for a database, ``staging`` for a file.
4. At the end the file is finished and synced, the state saved with ``publishing``, the
   file renamed over the target, and the state saved with the new ``last_id``.

The state never runs ahead of durable data (nothing lost), staging is cut back to its
checkpoint and rows are upserted by id (nothing doubled).

When the server stays down longer than the retry policy allows (``retry``, by default 60 s
from an outage's first failure; see :mod:`cdrapi.client.retry`), the pull checkpoints what
it has written (step 3) and raises the last error, its message saying that the state file
is intact and the next pull resumes from it (without ``state``: that the output is left as
it was).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cdrapi.client.client import AsyncClient
from cdrapi.client.errors import ClientError, OutputError
from cdrapi.client.filters import encode_filters
from cdrapi.client.outputs import Output, is_database_url, open_output, publish_file
from cdrapi.client.retry import Retry
from cdrapi.client.state import SyncState

__all__ = ["ProgressCallback", "PullResult", "apull", "pull"]

ProgressCallback = Callable[[int, int | None], None]
"""Called with (records written so far, records expected in all or None)."""


@dataclass(frozen=True, slots=True)
class PullResult:
    """What a pull did."""

    records: int
    """Records written by this run."""
    last_id: int | None
    """The id of the last record in the output (None if there is none yet)."""
    seconds: float
    target: str
    """Where the records went (a database URL without its password)."""

    @property
    def rate(self) -> float:
        """Records per second."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


def pull(
    url: str,
    token: str,
    output: str | os.PathLike[str] | Output,
    *,
    api_key: str | None = None,
    filters: Mapping[str, Any] | None = None,
    state: str | os.PathLike[str] | None = None,
    json: bool = False,
    concurrency: int = 4,
    table: str = "calls",
    timeout: float = 30.0,
    retry: Retry | None = None,
    progress: ProgressCallback | None = None,
    checkpoint_seconds: float = 5.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PullResult:
    """Write every call matching ``filters`` (Python values) to ``output``.

    ``output``: a ``.jsonl``, ``.csv`` or ``.parquet`` path, or a ``sqlite:///`` or
    ``postgresql://`` URL (table ``table``). ``state``: a sync state file, for incremental
    and resumable pulls. ``retry``: how long to wait out a server that is down
    (default :class:`~cdrapi.client.retry.Retry`: 60 s from an outage's first failure).
    Raises :class:`~cdrapi.client.errors.ClientError` subclasses.
    """
    return _run_loop(
        apull(
            url,
            token,
            output,
            api_key=api_key,
            filters=filters,
            state=state,
            json=json,
            concurrency=concurrency,
            table=table,
            timeout=timeout,
            retry=retry,
            progress=progress,
            checkpoint_seconds=checkpoint_seconds,
            transport=transport,
        )
    )


def _run_loop(main: Coroutine[Any, Any, PullResult]) -> PullResult:
    """Run ``main`` on uvloop where it is installed (less CPU per request), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not on every platform
        return asyncio.run(main)
    return uvloop.run(main)


async def apull(
    url: str,
    token: str,
    output: str | os.PathLike[str] | Output,
    *,
    api_key: str | None = None,
    filters: Mapping[str, Any] | None = None,
    state: str | os.PathLike[str] | None = None,
    json: bool = False,
    concurrency: int = 4,
    table: str = "calls",
    timeout: float = 30.0,
    retry: Retry | None = None,
    progress: ProgressCallback | None = None,
    checkpoint_seconds: float = 5.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PullResult:
    """:func:`pull` inside a running event loop."""
    started = time.monotonic()
    sink = output if isinstance(output, Output) else open_output(os.fspath(output), table=table)
    wire = encode_filters(filters or {})
    async with AsyncClient(
        url,
        token,
        api_key,
        json=json,
        timeout=timeout,
        retry=retry,
        concurrency=concurrency,
        transport=transport,
    ) as client:
        sync_state = None if state is None else SyncState.open(state, client.url, wire)
        try:
            run = _Run(client, sink, sync_state, progress, checkpoint_seconds)
            records, last_id = await run.go(wire)
        except ClientError as error:
            if error.retryable:  # the server failed for longer than the retry policy allows
                error.add_detail(_left_as_it_was(sink, sync_state))
            raise
        finally:
            if sync_state is not None:
                sync_state.close()
    return PullResult(records, last_id, time.monotonic() - started, sink.name)


class _Run:
    """One pull: the steps of the module docstring."""

    def __init__(
        self,
        client: AsyncClient,
        sink: Output,
        state: SyncState | None,
        progress: ProgressCallback | None,
        checkpoint_seconds: float,
    ) -> None:
        self.client = client
        self.sink = sink
        self.state = state
        self.progress = progress
        self.checkpoint_seconds = checkpoint_seconds

    def finish_publishing(self, state: SyncState) -> None:
        """Step 1: complete a previous run's rename."""
        info = state.publishing or {}
        prepared, target = str(info.get("path", "")), str(info.get("target", ""))
        if prepared and Path(prepared).exists():
            if target == self.sink.target:
                self.sink.publish(prepared)
            else:
                publish_file(prepared, target)
        state.last_id = info.get("last_id", state.last_id)
        state.output = _published(target)
        state.publishing = None
        state.staging = None
        state.save()

    def check_appendable(self, state: SyncState) -> None:
        """Add only to the file this state's pulls wrote, as they left it."""
        target = self.sink.target
        if is_database_url(target) or not os.path.isfile(target):
            return
        if state.output != _published(target):
            raise OutputError(
                f"{target} was not written by the pulls of {state.path} (or was changed "
                "since): adding to it could double records; pull into a new file or remove it"
            )

    def checkpoint(self, state: SyncState, last_id: int | None) -> None:
        """Step 3: output durable first, then the state."""
        token = self.sink.checkpoint()
        if token is None:
            state.last_id = last_id
        else:
            state.staging = {**token, "last_id": last_id}
        state.save()

    async def go(self, filters: dict[str, Any]) -> tuple[int, int | None]:
        state, sink = self.state, self.sink
        if state is not None and state.publishing:
            self.finish_publishing(state)
        if state is not None:
            self.check_appendable(state)
        resume = state.staging if state is not None else None
        after = state.last_id if state is not None else None
        if sink.open(append=state is not None, resume=resume, durable=state is not None):
            assert resume is not None
            after = resume.get("last_id", after)
        finished = False
        try:
            done, last_id = await self._copy(filters, after)
            if done == 0 and state is not None and resume is None and Path(sink.target).is_file():
                sink.discard()  # nothing new: the target stays as it is, untouched
            else:
                self._complete(last_id)
            finished = True
        finally:
            if finished or state is not None:
                sink.close()
            else:
                sink.discard()
        return done, last_id

    async def _copy(self, filters: dict[str, Any], after: int | None) -> tuple[int, int | None]:
        """Step 2 (and 3): fetch and write, checkpointing as we go."""
        done, total, last_id = 0, None, after
        saved = after
        due = time.monotonic() + self.checkpoint_seconds
        try:
            async with contextlib.aclosing(self.client.walk(filters, after)) as pages:
                async for page in pages:
                    if page.current_page == 1:  # a new round: its row_count is what is left
                        total = done + page.row_count
                    self.sink.write(page.records)
                    done += len(page.records)
                    last_id = page.last_id
                    if self.progress is not None:
                        self.progress(done, total)
                    if self.state is not None and time.monotonic() >= due:
                        self.checkpoint(self.state, last_id)
                        saved = last_id
                        due = time.monotonic() + self.checkpoint_seconds
        except ClientError as error:
            # The server gave out between two pages: keep what was written, so the next
            # run asks only for the rest.
            if error.retryable and self.state is not None and last_id != saved:
                self.checkpoint(self.state, last_id)
            raise
        if self.progress is not None:
            self.progress(done, max(total or 0, done))
        return done, last_id

    def _complete(self, last_id: int | None) -> None:
        """Step 4: finish, publish, and advance the state."""
        state, sink = self.state, self.sink
        prepared = sink.prepare()
        if state is None:
            sink.publish(prepared)
            return
        if prepared is None:  # a database: prepare() committed
            state.last_id = last_id
            state.staging = None
            state.save()
            return
        state.publishing = {"path": prepared, "target": sink.target, "last_id": last_id}
        state.staging = None
        state.save()
        sink.publish(prepared)
        state.last_id = last_id
        state.output = _published(sink.target)
        state.publishing = None
        state.save()


def _left_as_it_was(sink: Output, state: SyncState | None) -> str:
    """What a pull that gave up on the server leaves behind, for its error message."""
    if state is not None:
        return (
            f". The state file {state.path} is intact: run the same pull again to resume "
            "where this one stopped."
        )
    return f". {sink.name} is left as it was (with a state file, a pull resumes)."


def _published(target: str) -> dict[str, Any] | None:
    """What the state remembers of a published file: where it is and its size."""
    try:
        size = os.stat(target).st_size
    except OSError:
        return None
    return {"target": os.path.abspath(target), "size": size}
