"""What an ingestion run did, and the one line that says so.

Every run ends with :meth:`Summary.line`: lines read, calls stored, already stored,
rejected, left for later (a last line still being written), and the calls updated.
:meth:`Summary.failed` says whether the run should exit non-zero: nothing stored from a
source that had lines, or more than ``max_rejects`` of the lines rejected.
"""

from __future__ import annotations

from collections import Counter
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
    left: int = 0  # bytes of a last line without its newline, left for the next run
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

    def failed(self, max_rejects: float) -> str | None:
        """Why this run failed (exit non-zero), or ``None``: lines read and none stored
        or already stored, or more than ``max_rejects`` (a share) of them rejected."""
        if self.lines and not self.stored and not self.duplicates and self.rejected:
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
            text += ", 1 line left for later (no newline yet)"
        if self.updated:
            text += f", {self.updated:,} calls updated"
        return f"{text} in {self.seconds:.1f}s ({rate:,.0f} lines/s)"
