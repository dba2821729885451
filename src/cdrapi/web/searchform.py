"""The call log's search form: the URL's query string <-> ``/api/cdr``'s filters.

Every filter of the API is a field of the form, named as the filter is (``from``/``to``
for ``date_between``, ``hour_from``/``hour_to`` for ``hour_between``), plus the web's own
queue picker (:class:`LogFilters`); a search lives in the URL (GET), so it can be
bookmarked and shared. Values are read by the API's own parser
(:func:`~cdrapi.protocol.filters.parse_filters`): each filter alone first, so that each
message (the API's words) is shown next to its field, then all of them together.

A date preset (``preset=today``...) wins over ``from``/``to`` and is computed in the
PBX's time zone on every request: a bookmarked "today" stays today.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from cdrapi.protocol.errors import InvalidRequest
from cdrapi.protocol.filters import ScopedCallFilters, declare, parse_filters
from cdrapi.protocol.values import CALL_STATUSES, DIRECTIONS, TEXTS

__all__ = [
    "CHOICES",
    "FLAGS",
    "PICKERS",
    "PRESETS",
    "TEXTS_SHOWN",
    "LogFilters",
    "SearchForm",
    "pickers",
    "preset_dates",
    "read_form",
]


@dataclass(frozen=True, slots=True)
class LogFilters(ScopedCallFilters):
    """The API's filters (and the scopes) plus the web's own: the call's queue."""

    qname: tuple[str, ...] = declare(TEXTS, "any_of", "qname")


#: Date presets: URL value -> label.
PRESETS = {"today": "Today", "yesterday": "Yesterday", "7d": "Last 7 days", "month": "This month"}
#: Free-text fields: filter name -> label.
TEXTS_SHOWN = {
    "telephone_like": "Number contains",
    "telephone": "Number is exactly",
    "source": "From (contains)",
    "destination": "To (contains)",
    "uniqueid": "Unique id",
    "linkedid": "Linked id (call)",
    "external_id": "External id",
    "from_id": "From record id",
}
#: Pickers filled from the directory: filter name -> label.
PICKERS = {
    "project_id": "Project",
    "user_id": "User",
    "inbound_route_id": "Inbound route",
    "qname": "Queue",
}
#: Checkbox groups: filter name -> (label, choices).
CHOICES: dict[str, tuple[str, Sequence[str]]] = {
    "direction": ("Direction", DIRECTIONS),
    "call_status": ("Status", CALL_STATUSES),
}
#: Yes/no/any fields: filter name -> label.
FLAGS = {
    "has_recording_file": "Has a recording",
    "has_transcription": "Has a transcription",
    "has_monitor_file": "Has a monitor file",
}
_PAIRS = {"date_between": ("from", "to"), "hour_between": ("hour_from", "hour_to")}
_SINGLE = (*TEXTS_SHOWN, *FLAGS, "from", "to", "hour_from", "hour_to", "preset", "view")
_MULTI = (*PICKERS, *CHOICES)


@dataclass(slots=True)
class SearchForm:
    """A search as the form shows it, and its filters when every field is valid."""

    values: dict[str, str] = field(default_factory=dict)  # single-valued fields
    lists: dict[str, list[str]] = field(default_factory=dict)  # multi-valued fields
    errors: dict[str, list[str]] = field(default_factory=dict)  # filter name -> messages
    filters: LogFilters | None = None
    grouped: bool = True

    def query(self, **changes: str | None) -> str:
        """The search's query string (``?...``) with ``changes`` (``None`` drops a key);
        paging keys are not kept unless given."""
        pairs: list[tuple[str, str]] = []
        values = {**self.values, **{k: v for k, v in changes.items() if v is not None}}
        dropped = {k for k, v in changes.items() if v is None}
        for name in _SINGLE:
            if values.get(name) and name not in dropped:
                pairs.append((name, values[name]))
        for name in _MULTI:
            pairs.extend((name, value) for value in self.lists.get(name, ()) if value)
        for name in ("page", "after", "before", "last"):
            if changes.get(name):
                pairs.append((name, str(changes[name])))
        return "?" + urlencode(pairs) if pairs else "?"

    def chosen(self, name: str, value: object) -> bool:
        return str(value) in self.lists.get(name, ())


def preset_dates(preset: str, today: dt.date) -> tuple[dt.date, dt.date] | None:
    """The first and last day a preset names, ``today`` being the PBX's today."""
    if preset == "today":
        return today, today
    if preset == "yesterday":
        day = today - dt.timedelta(days=1)
        return day, day
    if preset == "7d":
        return today - dt.timedelta(days=6), today
    if preset == "month":
        return today.replace(day=1), today
    return None


def read_form(params: Any, today: dt.date) -> SearchForm:
    """The search in ``params`` (a Starlette ``QueryParams``: ``getlist`` and ``get``)."""
    form = SearchForm()
    for name in _SINGLE:
        value = (params.get(name) or "").strip()
        if value:
            form.values[name] = value
    for name in _MULTI:
        form.lists[name] = [value.strip() for value in params.getlist(name) if value.strip()]
    form.grouped = form.values.get("view") != "legs"
    dates = preset_dates(form.values.get("preset", ""), today)
    if dates is not None:
        form.values["from"], form.values["to"] = (day.isoformat() for day in dates)
    elif "preset" in form.values:
        form.errors["preset"] = [f"Unknown preset: {form.values['preset']}"]
    raw = _raw(form)
    for name, value in raw.items():
        try:
            parse_filters({name: value}, LogFilters)
        except InvalidRequest as exc:
            form.errors.setdefault(name, []).extend(exc.messages)
    if not form.errors:
        form.filters = parse_filters(raw, LogFilters)
    return form


def _raw(form: SearchForm) -> dict[str, Any]:
    """The form's values as an API request's ``filters`` map."""
    raw: dict[str, Any] = {}
    for name, (start, end) in _PAIRS.items():
        ends = [form.values.get(start, ""), form.values.get(end, "")]
        if any(ends):
            raw[name] = ends
    for name in (*TEXTS_SHOWN, *FLAGS):
        if form.values.get(name):
            raw[name] = form.values[name]
    for name in _MULTI:
        if form.lists.get(name):
            raw[name] = list(form.lists[name])
    return raw


def pickers(directory: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[tuple[str, str]]]:
    """The pickers' options (value, label) from the directory's tables."""
    return {
        "project_id": [(str(row["id"]), row["name"]) for row in directory.get("projects", [])],
        "user_id": [
            (str(row["id"]), f"{row['fullname']} ({row['extension']})")
            for row in directory.get("users", [])
        ],
        "inbound_route_id": [
            (str(row["id"]), f"{row['name']} ({row['did']})")
            for row in directory.get("inbound_routes", [])
        ],
        "qname": [(row["name"], row["name"]) for row in directory.get("queues", [])],
    }
