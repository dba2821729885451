"""JSON Lines: one record a line, exactly as the server sent it (43 keys, in order)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from cdrapi.client.exchange import Record
from cdrapi.client.outputs.base import StreamOutput

__all__ = ["JsonlOutput"]

_LINE = orjson.OPT_APPEND_NEWLINE


class JsonlOutput(StreamOutput):
    """``.jsonl`` / ``.ndjson`` files."""

    def encode(self, records: Sequence[Record]) -> bytes:
        dumps = orjson.dumps
        return b"".join([dumps(record, option=_LINE) for record in records])
