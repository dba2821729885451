"""Positions in a table's time column, in the column's own terms."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from cdrapi.ingest.watermark import Clock


def test_epoch_columns_of_any_number_type_are_positions() -> None:
    clock = Clock("epoch", dt.UTC)
    for value in (1710000000, 1710000000.25, Decimal("1710000000.250")):  # DECIMAL: Decimal
        assert clock.mark(value) == 1710000000
    assert clock.mark(True) is None and clock.mark("soon") is None
