"""The dashboard's figures as the pages show them (:mod:`cdrapi.store.dashboard` reads
them): the period's buckets, the key figures, per queue, per user, the missed calls not
called back; and the nearest-rank percentile of a histogram."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdrapi.protocol.filters import CallFilters

__all__ = [
    "HOURLY_DAYS",
    "SERVICE_LEVEL_SECONDS",
    "Dashboard",
    "MissedCall",
    "QueueFigures",
    "UserFigures",
    "average",
    "buckets",
    "percentile",
    "unit",
]

#: Seconds of waiting within which an answered call meets the service level (until the
#: setting ``service_level_seconds`` exists).
SERVICE_LEVEL_SECONDS = 20
#: Periods of at most this many days are charted per hour; longer ones per day.
HOURLY_DAYS = 3


@dataclass(frozen=True, slots=True)
class QueueFigures:
    name: str
    offered: int
    answered: int
    within: int  # answered within the service level's seconds

    @property
    def abandoned(self) -> int:
        return self.offered - self.answered

    @property
    def service_level(self) -> float | None:
        return self.within / self.offered if self.offered else None


@dataclass(frozen=True, slots=True)
class UserFigures:
    user_id: int | None
    name: str
    answered: int  # answered legs
    talk: int  # their billed seconds


@dataclass(frozen=True, slots=True)
class MissedCall:
    key: str  # the call: its linkedid, or the leg's uniqueid without one
    time: str
    source: str
    queue: str
    legs: int
    waited: int  # seconds from the call to ``now``


@dataclass(slots=True)
class Dashboard:
    """The figures of one search. Series are aligned with :attr:`buckets`."""

    unit: str  # "hour" or "day"
    buckets: list[str] = field(default_factory=list)  # "YYYY-MM-DD HH" or "YYYY-MM-DD"
    by_direction: dict[str, list[int]] = field(default_factory=dict)
    by_status: dict[str, list[int]] = field(default_factory=dict)
    calls: int = 0
    answered: int = 0
    queued: int = 0  # calls with a queue (their wait is measured)
    wait_average: float | None = None
    wait_p90: int | None = None
    talk_average: float | None = None  # over answered calls
    talk_p90: int | None = None
    heat: list[list[int]] = field(
        default_factory=lambda: [[0] * 24 for _ in range(7)]
    )  # Monday first
    queues: list[QueueFigures] = field(default_factory=list)
    users: list[UserFigures] = field(default_factory=list)
    service_level_seconds: int = SERVICE_LEVEL_SECONDS
    missed: int = 0  # missed calls not called back
    missed_calls: list[MissedCall] = field(default_factory=list)  # the most recent

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.calls if self.calls else None


def percentile(histogram: Mapping[int, int], share: float) -> int | None:
    """The nearest-rank percentile of the values counted in ``histogram`` (value -> count):
    the smallest value that at least ``share`` of them do not exceed."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = max(1, math.ceil(share * total - 1e-9)), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable")


def average(histogram: Mapping[int, int]) -> float | None:
    total = sum(histogram.values())
    return sum(value * n for value, n in histogram.items()) / total if total else None


def unit(filters: CallFilters) -> str:
    ends = filters.date_between
    if ends and ends[0] and ends[1]:
        days = (dt.date.fromisoformat(ends[1][:10]) - dt.date.fromisoformat(ends[0][:10])).days
        if days < HOURLY_DAYS:
            return "hour"
    return "day"


def buckets(unit: str, filters: CallFilters, found: Sequence[str]) -> list[str]:
    """Every bucket from the period's start to its end (open ends: the calls' first and
    last), so that a quiet hour or day shows as zero."""
    ends = filters.date_between or (None, None)
    first = ends[0] or (min(found) if found else None)
    last = ends[1] or (max(found) if found else None)
    if first is None or last is None:
        return []
    size = 13 if unit == "hour" else 10
    step = dt.timedelta(hours=1) if unit == "hour" else dt.timedelta(days=1)
    pattern = "%Y-%m-%d %H" if unit == "hour" else "%Y-%m-%d"
    at, end = (
        dt.datetime.strptime(first[:size], pattern),
        dt.datetime.strptime(last[:size], pattern),
    )
    buckets = []
    while at <= end:
        buckets.append(at.strftime(pattern))
        at += step
    return sorted(set(buckets) | set(found))
