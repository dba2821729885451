"""Records into typed Arrow tables (the columns of :mod:`cdrapi.client.columns`), for
Parquet.

Records (as the server sent them: text values, ``bill_minutes`` a number) are turned into
columns in C: one ``itemgetter`` per record, one ``zip`` to transpose, one ``pa.array`` a
column (about 2.3 us a record; Arrow's JSON reader on the records as JSON lines took 4.5).
The typed columns are then computed with Arrow kernels, never value by value in Python. A
server that sends other JSON types (numbers for ids, say) or leaves keys out takes a
slower path that makes each value text first.

Arrow memory comes from the system allocator: Arrow's default (mimalloc) keeps far more
memory resident than it holds, and a pull's memory is meant to stay flat.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson

from cdrapi.client.columns import KINDS, ZERO_TIME
from cdrapi.client.errors import OutputError, ResponseError
from cdrapi.client.exchange import Record
from cdrapi.protocol.records import RECORD_KEYS

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TableMaker", "arrow_schema"]

_VALUES = itemgetter(*RECORD_KEYS)


def require_pyarrow() -> None:
    """pyarrow is imported only by a Parquet pull (it is big)."""
    try:
        import pyarrow.compute
        import pyarrow.json
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:  # pragma: no cover - pyarrow is an install-time choice
        raise OutputError("Parquet output needs pyarrow: pip install pyarrow") from exc


def arrow_schema() -> pa.Schema:
    """The typed schema: the 43 record keys in order."""
    require_pyarrow()
    import pyarrow as pa

    types = {
        "int": pa.int64(),
        "timestamp": pa.timestamp("ms"),  # Parquet has no seconds unit
        "duration": pa.duration("s"),
        "bool": pa.bool_(),
        "text": pa.string(),
    }
    return pa.schema(
        [pa.field(key, types[KINDS[key]], nullable=key != "id") for key in RECORD_KEYS]
    )


class TableMaker:
    """Typed tables from records."""

    def __init__(self) -> None:
        require_pyarrow()
        import pyarrow as pa

        self.pool = pa.system_memory_pool()
        # Made once: each Python value made into an Arrow scalar costs a (failing) import of
        # dateutil in pyarrow, which would be paid per call.
        self._empty = pa.scalar("")
        self._null = pa.scalar(None, pa.string())
        self._sixty = pa.scalar(60, pa.int64())
        self._indexes = [pa.scalar(i, pa.int64()) for i in range(3)]
        self.schema = arrow_schema()
        self.raw_schema = pa.schema(
            [pa.field(k, pa.int64() if k == "bill_minutes" else pa.string()) for k in RECORD_KEYS]
        )

    def table(self, records: Sequence[Record]) -> pa.Table:
        """The typed table of ``records``."""
        import pyarrow as pa

        try:
            raw = self._read(records)
        except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError):
            raw = self._read_slowly(records)
        columns = []
        for key in RECORD_KEYS:
            try:
                columns.append(self._typed(key, raw.column(key), self.schema.field(key).type))
            except (TypeError, ValueError, IndexError) as exc:  # ArrowInvalid is a ValueError
                raise ResponseError(
                    f"field {key} has a value that is not a valid {KINDS[key]}: {exc}"
                ) from exc
        return pa.Table.from_arrays(columns, schema=self.schema)

    def _read(self, records: Sequence[Record]) -> pa.Table:
        import pyarrow as pa

        fields = self.raw_schema
        columns = list(zip(*map(_VALUES, records), strict=True)) or [()] * len(fields)
        arrays = [
            pa.array(column, type=field.type, memory_pool=self.pool)
            for column, field in zip(columns, fields, strict=True)
        ]
        return pa.Table.from_arrays(arrays, schema=fields)

    def _read_slowly(self, records: Sequence[Record]) -> pa.Table:
        import pyarrow as pa

        rows = []
        for record in records:
            row: dict[str, Any] = {}
            for key in RECORD_KEYS:
                value = record.get(key)
                if key == "bill_minutes" or value is None or isinstance(value, str):
                    row[key] = value
                elif isinstance(value, dict | list):
                    row[key] = orjson.dumps(value).decode()
                else:
                    row[key] = str(value)
            rows.append(row)
        return pa.Table.from_pylist(rows, schema=self.raw_schema)

    def _typed(self, key: str, column: Any, target: pa.DataType) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        kind, pool = KINDS[key], self.pool
        if kind == "text" or column.type == target:
            return column
        if pa.types.is_string(column.type):
            empty = pc.equal(column, self._empty, memory_pool=pool)
            if kind == "timestamp":
                zero = pc.starts_with(column, ZERO_TIME, memory_pool=pool)
                empty = pc.or_(empty, zero, memory_pool=pool)
            column = pc.if_else(empty, self._null, column, memory_pool=pool)
            if kind == "duration":  # HH:MM:SS, hours past 24 allowed
                parts = pc.split_pattern(column, ":", memory_pool=pool)
                hours, minutes, secs = (
                    pc.cast(pc.list_element(parts, i, memory_pool=pool), pa.int64())
                    for i in self._indexes
                )
                minutes = pc.add(pc.multiply(hours, self._sixty, memory_pool=pool), minutes)
                total = pc.add(pc.multiply(minutes, self._sixty, memory_pool=pool), secs)
                return pc.cast(total, target, memory_pool=pool)
        return pc.cast(column, target, memory_pool=pool)
