"""What an ingestion run did, and the one line that says so.

Every run ends with its text (``str(summary)``): lines read, calls stored, already stored,
rejected, left for later (a last line still being written), and the calls updated.
:meth:`Summary.failed` says whether the run should exit non-zero: every line read was
rejected, or more than ``max_rejects`` of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Summary"]


@dataclass
class Summary:
    """What an ingestion run did."""

    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    updated: int = 0
    left: int = 0  # lines the files had after the last one read: still being written
    seconds: float = 0.0
    #: How each stored row's direction was decided (sign -> rows), see derive.py.
    directions: Counter[str] = field(default_factory=Counter)
    #: Things worth a look that stopped nothing (a rotated file not found...).
    warnings: list[str] = field(default_factory=list)

    def add(self, lines: int, stored: int, rows: int, rejected: int) -> None:
        self.lines += lines
        self.stored += stored
        self.duplicates += rows - stored
        self.rejected += rejected

    def note(self, directions: Mapping[str, int], warnings: Iterable[object]) -> None:
        """Count a batch's direction signs and keep its warnings (as text)."""
        self.directions.update(directions)
        self.warnings.extend(str(warning) for warning in warnings)

    def failed(self, max_rejects: float) -> str | None:
        """Why this run failed (exit non-zero), or ``None``: every line read rejected, or
        more than ``max_rejects`` (a share) of them."""
        if self.rejected and self.rejected >= self.lines:
            return f"none of the {self.lines:,} lines could be stored"
        if self.lines and self.rejected > max_rejects * self.lines:
            share = self.rejected / self.lines
            return (
                f"{share:.1%} of the lines were rejected (more than --max-rejects "
                f"{max_rejects:.1%})"
            )
        return None

    def __str__(self) -> str:
        rate = self.lines / self.seconds if self.seconds else 0.0
        text = (
            f"{self.lines:,} lines: {self.stored:,} calls stored, {self.duplicates:,} already "
            f"there, {self.rejected:,} rejected"
        )
        if self.left:
            text += f", {self.left:,} left for the next run (still being written)"
        if self.updated:
            text += f", {self.updated:,} calls updated"
        return f"{text} in {self.seconds:.1f}s ({rate:,.0f} lines/s)"
