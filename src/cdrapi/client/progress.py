"""A pull's progress for people: a live bar on a terminal, a plain line now and then
otherwise (logs, CI), both with records per second and the time left."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "duration", "status"]


def duration(seconds: float | None) -> str:
    """``1:02:03``, ``2:03`` or ``--:--`` when unknown."""
    if seconds is None or seconds < 0 or seconds != seconds:
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status(done: int, total: int | None, elapsed: float) -> tuple[float | None, str]:
    """The fraction done (None when the total is unknown) and ``n/total records, rate, ETA``."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if not total:
        return None, f"{done:,} records  {rate:,.0f} records/s"
    fraction = min(1.0, done / total)
    eta = (total - done) / rate if rate > 0 else None
    return fraction, f"{done:,}/{total:,} records  {rate:,.0f} records/s  ETA {duration(eta)}"


class Progress:
    """Call it with ``(records done, total or None)``; :meth:`finish` at the end."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        interval: float | None = None,
        width: int = 30,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval if interval is not None else (0.2 if self.tty else 10.0)
        self.width = width
        self.started = time.monotonic()
        self._shown = self.started
        self._last: tuple[int, int | None] = (0, None)
        self._drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        self._last = (done, total)
        now = time.monotonic()
        if now - self._shown >= self.interval:
            self._shown = now
            self._show(done, total, now - self.started)

    def _show(self, done: int, total: int | None, elapsed: float) -> None:
        fraction, text = status(done, total, elapsed)
        if self.tty:
            if fraction is None:
                line = text
            else:
                filled = int(fraction * self.width)
                bar = "█" * filled + "░" * (self.width - filled)
                line = f"{bar} {fraction * 100:3.0f}%  {text}"
            self.stream.write(f"\r{line}\x1b[K")
            self._drawn = True
        else:
            self.stream.write(f"pulled {text}\n")
        self.stream.flush()

    def end_line(self) -> None:
        """End a bar left on the terminal (before an error message, say)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def finish(self, summary: str) -> None:
        """Draw the final state and print ``summary`` on its own line."""
        if self.tty:
            done, total = self._last
            self._show(done, total if total else None, time.monotonic() - self.started)
            self.end_line()
        self.stream.write(summary + "\n")
        self.stream.flush()
