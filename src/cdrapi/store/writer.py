"""The :class:`Writer`: every statement an ingestion run makes on the store, by name.

An ingestion run makes one ``Writer`` for its store and hands it plain values: rows as
tuples of column names' values, keys, ids, positions. The statements are the store's
(``cdrapi.ingest`` builds no SQL on the store's tables; tests/test_ingest_boundary.py
holds it); the modules under it are named by what they hold:

=======================  ============================================================
:mod:`.calls`            inserting calls (:func:`write_batch`: a batch with its
                         checkpoint, one transaction), keys stored, derived fields
:mod:`.recovery`         ``is_recovered`` of calls stored before a batch
:mod:`.queue_calls`      what queue_log says of each call, copied onto its rows
:mod:`.cel`              what CEL says of each call, copied onto its rows
:mod:`.directory`        projects, users, queues, trunks, inbound routes
:mod:`.checkpoints`      where each source stopped
:mod:`.bulk`             filling an empty store fast; indexes an interrupted load left
:mod:`.transaction`      the write transaction (writers' lock, version bump)
=======================  ============================================================

A batch (:meth:`Writer.write_batch`) is one transaction, in this order: its rows, the
recovery updates of calls stored earlier, the run's own hook (queue fields), then the
checkpoint; so a crash at any point loses and doubles nothing.

Producers that are not an ingestion run (the demo generator) and tests use the modules
under it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Engine, Row

from cdrapi.store import calls, cel, queue_calls
from cdrapi.store.bulk import bulk_load, ensure_indexes, long_import
from cdrapi.store.calls import write_batch
from cdrapi.store.checkpoints import read_checkpoint
from cdrapi.store.directory import read_directory, replace_directory
from cdrapi.store.recovery import recovery_sql, run_recovery
from cdrapi.store.transaction import writing

__all__ = ["Writer"]

#: A hook run in a batch's transaction: (the transaction, the lowest id of its new rows).
Hook = Callable[[Connection, int], None]


class Writer:
    """The store at ``engine`` as one ingestion run writes to it.

    ``elsewhere`` maps the ``call_codes`` of an unanswered leg to what they read once
    another leg answered the call (:data:`cdrapi.ingest.recovery.ELSEWHERE`). Methods
    taking ``conn`` run inside a batch's transaction (the ``conn`` a hook is given).
    """

    def __init__(self, engine: Engine, elsewhere: Mapping[str, str]) -> None:
        self.engine = engine
        self.recovery_sql = recovery_sql(elsewhere)

    # -- the start of a run --------------------------------------------------------------

    def ensure_indexes(self) -> None:
        """Build what a crashed bulk load left missing (see
        :func:`~cdrapi.store.bulk.ensure_indexes`)."""
        ensure_indexes(self.engine)

    def bulk_load(self) -> AbstractContextManager[bool]:
        """Fast loading while ``calls`` is empty (see :func:`~cdrapi.store.bulk.bulk_load`)."""
        return bulk_load(self.engine)

    def long_import(self) -> AbstractContextManager[None]:
        """Fewer log checkpoints while a run reads its sources once (see
        :func:`~cdrapi.store.bulk.long_import`)."""
        return long_import(self.engine)

    def read_directory(self) -> dict[str, list[dict[str, Any]]]:
        """The stored directory: table name -> rows (column -> value), by id."""
        return read_directory(self.engine)

    def replace_directory(self, tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        """Replace each directory table named in ``tables`` with its rows (one
        transaction)."""
        replace_directory(self.engine, **tables)

    def load_checkpoint(self, source: str) -> str | None:
        """The position saved with the last batch of ``source``, or ``None``."""
        return read_checkpoint(self.engine, source)

    def keys_since(self, conn: Connection, since: str) -> list[str]:
        """The keys (``source_key``) of the calls stored from ``since`` (``time`` text) on."""
        return calls.keys_since(conn, since)

    # -- a batch -------------------------------------------------------------------------

    def write_batch(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        checkpoint: tuple[str, str] | None = None,
        recovered: Sequence[str] = (),
        callbacks: Collection[tuple[str, str, str]] = (),
        cleared: Sequence[str] = (),
        look_in_store: bool = False,
        after_rows: Hook | None = None,
    ) -> int:
        """Store ``rows`` (tuples of ``columns``; those whose key is stored are skipped)
        and what they change, in one transaction; return how many rows are new.

        In the transaction, after the rows and in this order: calls stored earlier with
        keys ``recovered`` marked recovered, missed calls from the numbers of
        ``callbacks`` (number, window start, time of the answer) called back, calls with
        keys ``cleared`` not missed; with ``look_in_store`` (and rows), the legs stored
        earlier of calls a new row answered and the new unanswered legs of calls
        answered before (NULL wins over 1, whichever came first); then ``after_rows(conn,
        first_id)``; then the ``checkpoint`` (source, position).
        """
        statements = self.recovery_sql

        def changes(conn: Connection, first_id: int) -> None:
            run_recovery(conn, statements, "mark", [(key,) for key in recovered])
            run_recovery(conn, statements, "called_back", list(set(callbacks)))
            run_recovery(conn, statements, "clear", [(key,) for key in cleared])
            if look_in_store and rows:
                run_recovery(conn, statements, "answered_now", [(first_id,)])
                run_recovery(conn, statements, "answered_before", [(first_id,)])
            if after_rows is not None:
                after_rows(conn, first_id)

        return write_batch(self.engine, columns, rows, checkpoint=checkpoint, after_rows=changes)

    def mark_recovered(self, conn: Connection, keys: Sequence[str]) -> None:
        """Mark the stored missed calls with ``keys`` recovered (``is_recovered`` 0 -> 1)."""
        run_recovery(conn, self.recovery_sql, "mark", [(key,) for key in keys])

    def clear_missed(self, conn: Connection, keys: Sequence[str]) -> None:
        """Mark the stored rows with ``keys`` as legs of an answered call, not missed."""
        run_recovery(conn, self.recovery_sql, "clear", [(key,) for key in keys])

    # -- queue_log -----------------------------------------------------------------------

    def queue_fields_for_new_calls(self, conn: Connection, first_id: int) -> None:
        """Give the rows just stored (ids from ``first_id`` on) what queue_log and CEL
        already said of their calls (CEL's last: its values are the more exact)."""
        if queue_calls.has_queue_calls(conn):
            queue_calls.copy_queue_fields(conn, from_id=first_id)
        if cel.has_cel_calls(conn):
            cel.copy_cel_fields(conn, from_id=first_id)

    def read_queue_events(self, conn: Connection, callids: Collection[str]) -> dict[str, list[Any]]:
        """The events stored for each of ``callids`` (callid -> events as saved)."""
        return queue_calls.read_queue_events(conn, callids)

    def save_queue_calls(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert or replace queued calls: ``callid``, ``events`` and their fields."""
        queue_calls.save_queue_calls(conn, rows)

    def copy_queue_fields(self, conn: Connection, callids: Collection[str]) -> int:
        """Copy the queue fields of ``callids`` onto their calls, then what CEL said of
        those calls again (it wins where it knows); return the rows changed."""
        changed = queue_calls.copy_queue_fields(conn, callids=callids)
        if changed and cel.has_cel_calls(conn):
            cel.copy_cel_fields(conn, uniqueids=callids)
        return changed

    # -- CEL -----------------------------------------------------------------------------

    def read_cel_events(self, conn: Connection, linkedids: Collection[str]) -> dict[str, list[str]]:
        """The CEL events stored for each of ``linkedids`` (linkedid -> events as saved)."""
        return cel.read_cel_events(conn, linkedids)

    def save_cel_calls(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert or replace calls' CEL: ``linkedid``, ``events`` (texts without ``\x1e``)
        and their fields."""
        cel.save_cel_calls(conn, rows)

    def write_cel_calls(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert or replace calls' CEL given as tuples of
        :data:`cdrapi.store.cel.CEL_COLUMNS` (``linkedid``, ``events`` joined by
        ``\x1e``, ..., ``rings`` as JSON text, ``ended``): the fast way of a big import."""
        cel.write_cel_calls(conn, rows)

    def copy_cel_fields(self, conn: Connection, linkedids: Collection[str]) -> int:
        """Copy the CEL fields of ``linkedids`` onto their calls; return the rows changed."""
        return cel.copy_cel_fields(conn, linkedids=linkedids)

    def call_ended(self, linkedid: str) -> str | None:
        """When the call ``linkedid`` really ended (CEL's LINKEDID_END), if known."""
        with self.engine.connect() as conn:
            return cel.call_ended(conn, linkedid)

    # -- deriving stored calls again -----------------------------------------------------

    def ingested_calls(
        self, columns: Sequence[str], after: tuple[str, int] | None, limit: int
    ) -> list[Row[Any]]:
        """Up to ``limit`` ingested calls after (time, id) ``after``, in that order: their
        ``columns`` and ``source_key``."""
        return calls.ingested_calls(self.engine, columns, after, limit)

    def rewrite_derived(
        self,
        columns: Sequence[str],
        rows: Iterable[tuple[int, Sequence[Any]]],
        *,
        recovered: Sequence[str] = (),
        cleared: Sequence[str] = (),
    ) -> None:
        """In one transaction: set ``columns`` of each call in ``rows`` (id, values),
        then mark the calls with keys ``recovered`` recovered and those with keys
        ``cleared`` not missed."""
        with writing(self.engine) as conn:
            calls.rewrite_derived(conn, columns, rows)
            self.mark_recovered(conn, recovered)
            self.clear_missed(conn, cleared)

    def copy_all_queue_fields(self) -> int:
        """Copy every queued call's fields onto its calls, then every call's CEL fields
        (one transaction); return the rows queue_log changed."""
        with writing(self.engine) as conn:
            changed = queue_calls.copy_queue_fields(conn)
            if cel.has_cel_calls(conn):
                cel.copy_cel_fields(conn)
            return changed
