"""CSV: a header with the 43 record keys of SPEC §6 in order, then one row per record.

Values are written as the server sent them; ``null`` is an empty field. UTF-8, ``\\r\\n``
line ends and minimal quoting, as Python's ``csv`` module (and spreadsheets) read them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from operator import itemgetter

from cdrapi.client.exchange import Record
from cdrapi.client.outputs.base import StreamOutput
from cdrapi.protocol.records import RECORD_KEYS

__all__ = ["CsvOutput"]

_ROW = itemgetter(*RECORD_KEYS)


class CsvOutput(StreamOutput):
    """``.csv`` files."""

    def header(self) -> bytes:
        return self.encode_rows([RECORD_KEYS])

    def encode(self, records: Sequence[Record]) -> bytes:
        try:
            rows = [_ROW(record) for record in records]
        except KeyError:  # a server that leaves keys out: those fields are empty
            rows = [tuple(record.get(key) for key in RECORD_KEYS) for record in records]
        return self.encode_rows(rows)

    @staticmethod
    def encode_rows(rows: Sequence[Sequence[object]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return buffer.getvalue().encode("utf-8")
