"""Parquet with typed columns (:mod:`cdrapi.client.columns`), zstd-compressed, written with
pyarrow. Records are turned into Arrow every 512 (:mod:`.arrow`), in a thread of its own, and
written in row groups of 8,192, so memory stays flat however many records come.

A one-shot pull writes the Parquet file directly (to ``<target>.part``, renamed when
done). A resumable pull (with a state file) cannot do that, since a Parquet file is only
readable once its footer is written; it keeps its records as Arrow IPC segments in
``<target>.segments/``, one per checkpoint, each synced to disk when the checkpoint is
taken, and assembles the Parquet file at the end (after the target's own records when
appending).
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cdrapi.client.columns import KINDS
from cdrapi.client.errors import OutputError
from cdrapi.client.exchange import Record
from cdrapi.client.outputs.arrow import TableMaker
from cdrapi.client.outputs.base import Output
from cdrapi.client.state import fsync_directory

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

__all__ = ["ParquetOutput"]

ROW_GROUP_ROWS = 8192
CONVERT_ROWS = 512


class ParquetOutput(Output):
    """``.parquet`` files."""

    def __init__(
        self, path: str | os.PathLike[str], *, row_group_rows: int = ROW_GROUP_ROWS
    ) -> None:
        self.target = os.fspath(path)
        self.path = Path(path)
        self.staging = self.path.with_name(self.path.name + ".part")
        self.segments = self.path.with_name(self.path.name + ".segments")
        self._row_group_rows = row_group_rows
        self._convert_rows = min(CONVERT_ROWS, row_group_rows)
        self._records: list[Record] = []  # not yet in Arrow
        self._tables: list[pa.Table] = []  # typed, waiting for their row group
        self._tables_rows = 0
        self._durable = False
        self._append = False
        self._done_segments = 0
        self._parquet: pq.ParquetWriter | None = None
        self._segment: tuple[IO[bytes], ipc.RecordBatchStreamWriter] | None = None
        self._worker: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()

    def open(self, *, append: bool, resume: Mapping[str, Any] | None, durable: bool) -> bool:
        self._maker = TableMaker()
        self._durable = durable
        self._append = append and self.path.exists()
        try:
            if not durable:
                self._parquet = self._parquet_writer()
                return False
            if resume and resume.get("dir") == str(self.segments) and self._has_segments(resume):
                self._done_segments = int(resume["segments"])
                for extra in self.segments.iterdir():
                    if not extra.stem.isdigit() or int(extra.stem) >= self._done_segments:
                        extra.unlink()
                return True
            shutil.rmtree(self.segments, ignore_errors=True)
            self.segments.mkdir()
        except OSError as exc:
            raise OutputError(f"cannot write {self.target}: {exc}") from exc
        return False

    def _segment_path(self, index: int) -> Path:
        return self.segments / f"{index:06d}.arrows"

    def _has_segments(self, resume: Mapping[str, Any]) -> bool:
        try:
            count = int(resume["segments"])
        except (KeyError, TypeError, ValueError):
            return False
        return all(self._segment_path(index).is_file() for index in range(count))

    def _parquet_writer(self) -> pq.ParquetWriter:
        import pyarrow.parquet as pq

        schema = self._maker.schema
        writer = pq.ParquetWriter(
            str(self.staging),
            schema,
            compression="zstd",
            # Min/max statistics where they help readers skip row groups (ids, times,
            # numbers); those of free text would only grow the footer.
            write_statistics=[key for key in schema.names if KINDS[key] != "text"],
            memory_pool=self._maker.pool,
        )
        if self._append:
            existing = pq.ParquetFile(self.path)
            if not existing.schema_arrow.equals(schema):
                writer.close()
                raise OutputError(f"{self.target} has other columns than cdrapi's records")
            for group in range(existing.num_row_groups):
                writer.write_table(existing.read_row_group(group))
        return writer

    def write(self, records: Sequence[Record]) -> None:
        self._records.extend(records)
        if len(self._records) >= self._convert_rows:
            self._submit(self._records)
            self._records = []

    def _submit(self, records: list[Record]) -> None:
        """Convert and write ``records`` in the background thread (Arrow lets go of the GIL
        while it compresses and writes, so the pull goes on meanwhile), once the previous
        chunk is done."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="cdrapi-parquet")
        while self._pending:
            self._pending.popleft().result()
        self._pending.append(self._worker.submit(self._convert, records))

    def _convert(self, records: list[Record]) -> None:
        table = self._maker.table(records)
        self._tables.append(table)
        self._tables_rows += table.num_rows
        if self._tables_rows >= self._row_group_rows:
            self._write_group()

    def _write_group(self) -> None:
        if not self._tables_rows:
            return
        import pyarrow as pa

        table = pa.concat_tables(self._tables)
        self._tables, self._tables_rows = [], 0
        try:
            if self._parquet is not None:
                self._parquet.write_table(table, row_group_size=table.num_rows)
                return
            if self._segment is None:
                import pyarrow.ipc as ipc

                file = open(self._segment_path(self._done_segments), "wb")  # noqa: SIM115
                options = ipc.IpcWriteOptions(compression="lz4")
                writer = ipc.new_stream(file, table.schema, options=options)
                self._segment = (file, writer)
            self._segment[1].write_table(table)
        except OSError as exc:
            raise OutputError(f"cannot write {self.target}: {exc}") from exc

    def _flush(self) -> None:
        """Everything written so far into the file (or segment)."""
        if self._records:
            self._submit(self._records)
            self._records = []
        while self._pending:
            self._pending.popleft().result()
        self._write_group()

    def checkpoint(self) -> dict[str, Any]:
        self._flush()
        if self._segment is not None:
            file, writer = self._segment
            try:
                writer.close()
                file.flush()
                os.fsync(file.fileno())
                file.close()
            except OSError as exc:
                raise OutputError(f"cannot write {self.target}: {exc}") from exc
            self._segment = None
            self._done_segments += 1
            fsync_directory(self.segments)
        return {"dir": str(self.segments), "segments": self._done_segments}

    def prepare(self) -> str:
        import pyarrow as pa
        import pyarrow.ipc as ipc

        try:
            if self._durable:
                self.checkpoint()
                self._parquet = self._parquet_writer()
                group: list[pa.RecordBatch] = []
                for index in range(self._done_segments):
                    with pa.memory_map(str(self._segment_path(index))) as source:
                        for batch in ipc.open_stream(source):
                            group.append(batch)
                            if sum(len(b) for b in group) >= self._row_group_rows:
                                self._parquet.write_table(pa.Table.from_batches(group))
                                group = []
                if group:
                    self._parquet.write_table(pa.Table.from_batches(group))
            else:
                self._flush()
            if self._parquet is not None:
                self._parquet.close()
                self._parquet = None
            with open(self.staging, "rb") as file:
                os.fsync(file.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write {self.target}: {exc}") from exc
        return str(self.staging)

    def publish(self, prepared: str | None) -> None:
        super().publish(prepared)
        shutil.rmtree(self.segments, ignore_errors=True)

    def close(self) -> None:
        if self._worker is not None:
            for future in self._pending:
                future.cancel()
            self._worker.shutdown(wait=True)
            self._worker = None
            self._pending.clear()
        if self._segment is not None:
            self._segment[0].close()  # unfinished: not counted, removed on resume
            self._segment = None
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None

    def discard(self) -> None:
        self.close()
        self.staging.unlink(missing_ok=True)
        shutil.rmtree(self.segments, ignore_errors=True)
