"""How both clients read every matching record exactly once, in id order, while the server
keeps receiving calls. No I/O here: the clients run this plan, one request at a time or
several at once.

A walk is a series of rounds. A round asks for page 1 with ``from_id = last + 1`` (``last``
being the last id delivered; on the first round, the caller's own ``from_id`` if any), learns
``max_page``, then reads pages 2..max_page of that same query. Records come in id order and
new calls get higher ids (SPEC §5-6), so a round's pages stay put while calls are added;
calls that arrive during a round are read by the next one. The walk ends with a round that
fits on one page (or finds nothing). Each round costs the server one count, whatever its
length; a walk of N records costs O(N) on a server that pages by keyset.

Two checks keep the promise even with a server that misbehaves:

- every record must have a higher id than the one before it, so a server that ignores
  ``from_id`` or does not sort by id fails loudly (:class:`ResponseError`) instead of
  doubling records;
- a page that reports fewer matching records than the round's page 1 means records were
  deleted and later pages moved up: the round stops before that page, and the next round
  starts after the last id delivered, so nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdrapi.client.errors import ResponseError
from cdrapi.client.exchange import Page

__all__ = ["Walk"]


class Walk:
    """The reading plan for wire-ready ``filters``, resuming after ``after_id`` if given."""

    def __init__(self, filters: Mapping[str, Any], after_id: int | None = None) -> None:
        self._filters = {name: value for name, value in filters.items() if name != "from_id"}
        floor = filters.get("from_id")
        self._floor = None if floor is None else int(floor)
        self.last_id = after_id
        """The id of the last record delivered."""
        self.done = False
        self._row_count = 0

    def round_filters(self) -> dict[str, Any]:
        """The filters of the next round: the caller's, with ``from_id = last + 1``."""
        from_id = self._floor
        if self.last_id is not None:
            from_id = max(from_id or 0, self.last_id + 1)
        if from_id is None:
            return dict(self._filters)
        return {**self._filters, "from_id": from_id}

    def first(self, page: Page) -> tuple[Page, range]:
        """Take a round's page 1; return it and the numbers of the round's other pages."""
        self._row_count = page.row_count
        self._accept(page)
        if not page.records or page.max_page <= 1:
            self.done = True
            return page, range(0)
        return page, range(2, page.max_page + 1)

    def next(self, page: Page) -> Page | None:
        """Take a later page of the round; ``None`` ends the round before this page."""
        if page.row_count < self._row_count or not page.records:
            return None
        self._accept(page)
        return page

    def _accept(self, page: Page) -> None:
        last = self.last_id
        for record in page.records:
            try:
                current = int(record["id"])
            except (TypeError, ValueError) as exc:
                raise ResponseError(f"record id {record['id']!r} is not an integer") from exc
            if last is not None and current <= last:
                raise ResponseError(
                    f"the server sent id {current} after id {last}: records must come in "
                    "ascending id order, each once (does the server honour from_id?)"
                )
            last = current
        self.last_id = last
