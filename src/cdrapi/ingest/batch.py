"""A batch: rows read from a source, what to change with them, and where the source is
after them; :func:`commit` stores it in one transaction.

With the rows go the changes :mod:`cdrapi.ingest.recovery` found for calls stored
before: earlier rows recovered (``is_recovered`` 1), earlier rows that are legs of an
answered call (``is_recovered`` NULL, ``call_codes`` as
:data:`~cdrapi.ingest.recovery.ELSEWHERE`), and, when the store held calls before the
run, the look-ups of the batch's numbers and linkedids among them. The statements are
the store's (:meth:`cdrapi.store.writer.Writer.write_batch`); a batch hands it values.

Rows made with ``[fields]`` end with the CRM fields
(:data:`~cdrapi.ingest.crm_fields.CRM_COLUMNS`, see
:class:`~cdrapi.ingest.crm_fields.MappedDeriver`): :func:`commit` tells them by their
length, once per batch, and writes those columns too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from cdrapi.ingest.crm_fields import CRM_COLUMNS
from cdrapi.ingest.errors import Reject
from cdrapi.ingest.recovery import ELSEWHERE
from cdrapi.ingest.rejects import RejectFile
from cdrapi.ingest.row import ROW_FIELDS
from cdrapi.ingest.summary import Summary
from cdrapi.store.writer import Writer

__all__ = ["AfterRows", "Batch", "Summary", "commit", "writer_for"]

#: The columns of a row that ends with the CRM fields.
_MAPPED_FIELDS = (*ROW_FIELDS, *CRM_COLUMNS)


@dataclass
class Batch:
    """Rows (tuples in :class:`~cdrapi.ingest.row.Row` order) and rejects of some
    lines, earlier rows found recovered or not missed, and the checkpoint (source,
    position) after the lines."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    # keys of earlier rows that are legs of an answered call: not missed calls
    cleared: list[str] = field(default_factory=list)
    # whether legs of the rows' calls may be stored by earlier runs (look them up)
    look_in_store: bool = False
    checkpoint: tuple[str, str] | None = None
    lines: int = 0
    events: list[tuple[Any, ...]] = field(default_factory=list)  # queue_log events
    # (number, window start, time) of answered calls, for missed calls stored earlier
    callbacks: list[tuple[str, str, str]] = field(default_factory=list)
    # lines stored but worth a look (broken quoting in a caller id...), reported like rejects
    warnings: list[Reject] = field(default_factory=list)
    # how the direction of each row was decided: sign -> rows (Deriver.take_signs)
    directions: dict[str, int] = field(default_factory=dict)


#: What a source does in a batch's transaction after its rows and recoveries:
#: ``after_rows(conn, first_id, batch)`` (``first_id``: the lowest id of the new rows).
AfterRows = Callable[[Connection, int, Batch], None]


def writer_for(engine: Engine) -> Writer:
    """The store's :class:`~cdrapi.store.writer.Writer` for an ingestion run."""
    return Writer(engine, ELSEWHERE)


def commit(
    store: Writer, batch: Batch, rejects: RejectFile, after_rows: AfterRows | None = None
) -> int:
    """Write ``batch``'s rejects, then its rows, recoveries and checkpoint in one
    transaction (``after_rows(conn, first_id, batch)`` runs in it too); return the new rows.

    In the transaction, in this order: earlier rows recovered, missed calls stored by
    earlier runs called back, earlier rows not missed (all by the batch's lists), then,
    with ``look_in_store``, the legs stored by earlier runs of calls a new row answered
    and the new unanswered legs of calls answered before (the statements of
    :mod:`cdrapi.store.recovery`): NULL wins over 1, whichever came first.
    """
    rejects.write(batch.rejects)
    hook = (
        None if after_rows is None else (lambda conn, first_id: after_rows(conn, first_id, batch))
    )
    rows = batch.rows
    columns = ROW_FIELDS if not rows or len(rows[0]) == len(ROW_FIELDS) else _MAPPED_FIELDS
    return store.write_batch(
        columns,
        rows,
        checkpoint=batch.checkpoint,
        recovered=batch.recovered,
        callbacks=batch.callbacks,
        cleared=batch.cleared,
        look_in_store=batch.look_in_store,
        after_rows=hook,
    )
