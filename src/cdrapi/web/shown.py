"""How the web pages show the store's values: names, durations, statuses, times.

Call times are stored in the PBX's local time (``settings.timezone``) and shown as
stored; :func:`pbx_now` is "now" in that zone (for the date presets), :func:`pbx_time`
an epoch (queue_log's) in it. Registered as Jinja2 filters by :func:`register`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment

__all__ = [
    "caller_name",
    "direction_label",
    "duration",
    "pbx_now",
    "pbx_time",
    "pbx_zone",
    "register",
    "status_label",
    "zone_name",
]

_CALLER = re.compile(r'\s*"?(?P<name>[^"<]*?)"?\s*<(?P<number>[^>]*)>\s*')
_STATUS = {
    "ANSWERED": "Answered",
    "NO ANSWER": "Missed",
    "BUSY": "Busy",
    "FAILED": "Failed",
    "CONGESTION": "Congestion",
}
_DIRECTION = {"IN": "In", "OUT": "Out", "INTERNAL": "Internal"}


def pbx_zone(timezone: str) -> dt.tzinfo:
    """The PBX's zone (``local``: this machine's)."""
    if timezone == "local":
        zone = dt.datetime.now().astimezone().tzinfo
        assert zone is not None
        return zone
    return ZoneInfo(timezone)


def zone_name(timezone: str) -> str:
    """The zone's name as the pages show it."""
    return timezone if timezone != "local" else (pbx_now(timezone).tzname() or "local time")


def pbx_now(timezone: str) -> dt.datetime:
    return dt.datetime.now(pbx_zone(timezone))


def pbx_time(epoch: int | float, timezone: str) -> str:
    """An epoch as ``YYYY-MM-DD HH:MM:SS`` in the PBX's zone (as call times are stored)."""
    return dt.datetime.fromtimestamp(epoch, pbx_zone(timezone)).strftime("%Y-%m-%d %H:%M:%S")


def caller_name(caller_id: str | None, number: str = "") -> str:
    """The name in ``"Name" <number>`` (empty when there is none or it is the number)."""
    match = _CALLER.fullmatch(caller_id or "")
    if match is None:
        return ""
    name = match["name"].strip()
    return "" if name in ("", number, match["number"]) else name


def duration(seconds: Any) -> str:
    """Seconds as ``m:ss`` (``h:mm:ss`` from an hour); empty for nothing."""
    if seconds in (None, ""):
        return ""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status_label(status: str) -> str:
    return _STATUS.get(status, status.title())


def direction_label(direction: str) -> str:
    return _DIRECTION.get(direction, direction.title())


def register(env: Environment) -> None:
    """Make the helpers Jinja2 filters of ``env`` (idempotent)."""
    env.filters.update(
        caller_name=caller_name,
        duration=duration,
        status_label=status_label,
        direction_label=direction_label,
    )
