"""The call view at ``/calls/{key}``: every field of every leg, a timeline, the recordings.

``key`` is the call's ``linkedid`` (or the ``uniqueid`` of a leg without one), as the
call log links it. The legs are those the account's scope lets through: a call of
another project is "not found", exactly as one that does not exist.

The timeline is built from what the store knows of each leg: its start, IVR path,
queue (the queue_log events when they are stored, else the leg's queue fields), ringing,
answer (``time_end`` less the billed seconds), transfers and hang-up. Each recording
plays in an ``<audio>`` element from a signed ``/recordings/...`` link (HTTP Range: it
seeks); without ``recording_secret`` the page says that it cannot be played here.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cdrapi.settings import Settings
from cdrapi.store.calllog import CallLegs, CallLog
from cdrapi.store.engine import StoreError
from cdrapi.store.executor import StoreExecutor
from cdrapi.web.auth import scoped, templates
from cdrapi.web.calllog import signed_in, store_unavailable
from cdrapi.web.searchform import LogFilters
from cdrapi.web.shown import caller_name, duration, pbx_time, zone_name

__all__ = ["Moment", "callview_routes", "timeline"]

_FORMAT = "%Y-%m-%d %H:%M:%S"
_HEADERS = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Moment:
    """One step of the timeline: when, what, and which leg (1 = the first)."""

    time: str
    what: str
    leg: int
    offset: str = ""  # since the call's start, m:ss


def _at(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text or "", _FORMAT)
    except ValueError:
        return None


def _leg_moments(number: int, leg: dict[str, Any], events: list[Any], zone: str) -> list[Any]:
    """The moments of one leg, as (datetime, text) pairs."""
    start = _at(leg["time"])
    if start is None:
        return []
    end = _at(leg["time_end"]) or start + dt.timedelta(seconds=leg["duration"] or 0)
    who = leg["dstchannel_formatted"] or leg["destination"]
    moments = [(start, f"Starts: {leg['source']} → {leg['destination']} ({leg['direction']})")]
    if leg["ivr_log"]:
        moments.append((start, f"IVR: {leg['ivr_log']}"))
    if events:
        for epoch, _callid, queue, agent, event, data in events:
            detail = " ".join(str(part) for part in data if part)
            at = _at(pbx_time(epoch, zone)) or start
            moments.append(
                (at, f"Queue {queue}: {event} {agent if agent != 'NONE' else ''} {detail}")
            )
    elif leg["qname"]:
        entered = start + dt.timedelta(seconds=leg["ivr_duration"] or 0)
        waited = f", waits {duration(leg['hold_time'])}" if leg["hold_time"] else ""
        moments.append((entered, f"Enters queue {leg['qname']}{waited}"))
        if leg["queue_log"]:
            moments.append((entered, f"Queue: {leg['queue_log']}"))
    answered = leg["call_status"] == "ANSWERED" and leg["billsec"]
    answer = end - dt.timedelta(seconds=leg["billsec"] or 0) if answered else None
    if leg["ring_time"]:
        # ring_time may count the IVR and the queue wait too: the phone rings after them.
        stop = answer or end
        ringing = max(stop - dt.timedelta(seconds=leg["ring_time"]), start)
        if leg["qname"]:
            queued = (leg["ivr_duration"] or 0) + (leg["hold_time"] or 0)
            ringing = min(max(ringing, start + dt.timedelta(seconds=queued)), stop)
        rang = duration(int((stop - ringing).total_seconds()))
        moments.append((ringing, f"Rings {who} for {rang}"))
    if answer is not None:
        by = leg["user_fullname"] or who
        moments.append((answer, f"Answered by {by}, talks {duration(leg['billsec'])}"))
    if leg["transfers"]:
        moments.append((end, f"Transfer: {leg['transfers']}"))
    cause = f" ({leg['call_status_info']})" if leg["call_status_info"] else ""
    moments.append((end, f"Hangs up: {leg['call_status']}{cause}"))
    return [(at, text, number) for at, text in moments]


def timeline(call: CallLegs, zone: str) -> list[Moment]:
    """The call's moments in time order (a leg's own order kept for equal times)."""
    found: list[Any] = []
    transfers: set[str] = set()  # a call's transfers are on each of its legs: said once
    for number, leg in enumerate(call.legs, 1):
        events = call.queue_events.get(leg["uniqueid"], [])
        for moment in _leg_moments(
            number, leg, events if number == 1 or leg["qname"] else [], zone
        ):
            if moment[1].startswith("Transfer: "):
                if moment[1] in transfers:
                    continue
                transfers.add(moment[1])
            found.append(moment)
    found.sort(key=lambda moment: moment[0])
    if not found:
        return []
    start = found[0][0]
    return [
        Moment(at.strftime(_FORMAT), " ".join(text.split()), number, duration((at - start).seconds))
        for at, text, number in found
    ]


def _numbers(legs: Sequence[dict[str, Any]]) -> list[str]:
    """The call's outside numbers (or, for an internal call, its extensions), once each."""
    found: dict[str, None] = {}
    for leg in legs:
        for number in (leg["source"], leg["destination"]):
            if number and number not in ("s", "anonymous"):
                found.setdefault(number, None)
    return list(found)


def callview_routes(
    settings: Settings,
    log: CallLog,
    database: StoreExecutor,
    recording_link: Callable[[str], str | None],
) -> list[Route]:
    """``GET /calls/{key}``; ``recording_link(path)`` is a playable URL of a recording
    (``None``: none can be made)."""

    async def view(request: Request) -> Response:
        account = await signed_in(request)
        if isinstance(account, Response):
            return account
        key = request.path_params["key"]
        try:
            read = functools.partial(log.call, scoped(LogFilters(), account), key)
            call = await database.run(read)
        except StoreError:
            return store_unavailable(request)
        if call is None:
            missing = {"title": "No such call", "message": f"No call {key} here."}
            return templates.TemplateResponse(request, "message.html", missing, 404, _HEADERS)
        recordings = []
        for number, leg in enumerate(call.legs, 1):
            if leg["recording_file"]:
                url = recording_link(leg["recording_file"])
                recordings.append((number, leg["recording_file"], url))
        first = call.legs[0]
        context: dict[str, Any] = {
            "call": call,
            "first": first,
            "name": caller_name(first["caller_id"], first["source"]),
            "timeline": timeline(call, settings.timezone),
            "recordings": recordings,
            "numbers": _numbers(call.legs),
            "timezone": zone_name(settings.timezone),
        }
        return templates.TemplateResponse(request, "callview.html", context, 200, _HEADERS)

    return [Route("/calls/{key:path}", view, methods=["GET", "HEAD"])]
