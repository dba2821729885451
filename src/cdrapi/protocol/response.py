"""Response bodies (SPEC §5): the success page and the error envelope, as JSON bytes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from cdrapi.protocol.pagination import PAGE_SIZE, page_count
from cdrapi.protocol.records import record

__all__ = ["error_body", "page_body"]


def error_body(messages: Iterable[str]) -> bytes:
    """The vendor error envelope; ``pagination`` is an empty array on errors."""
    return orjson.dumps(
        {"has_error": True, "messages": list(messages), "pagination": [], "results": []}
    )


def page_body(row_count: int, page: int, rows: Sequence[Sequence[Any]]) -> bytes:
    """A success page: ``current_page`` is 0 when nothing matches, as the vendor does."""
    return orjson.dumps(
        {
            "has_error": False,
            "messages": [],
            "pagination": {
                "row_count": row_count,
                "page_size": PAGE_SIZE,
                "current_page": page if row_count else 0,
                "max_page": page_count(row_count),
            },
            "results": [record(row) for row in rows],
        }
    )
