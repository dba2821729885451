"""The vendor's pages (SPEC §5): 100 records a page, numbered from 1.

One owner for the page size: the store cuts its pages with it and the response states it
(``pagination.page_size``, ``max_page``).
"""

from __future__ import annotations

__all__ = ["PAGE_SIZE", "page_count"]

PAGE_SIZE = 100


def page_count(row_count: int) -> int:
    """How many pages ``row_count`` records fill: the envelope's ``max_page``."""
    return -(-row_count // PAGE_SIZE)
