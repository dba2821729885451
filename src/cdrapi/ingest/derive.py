"""From a raw CDR (see :mod:`cdrapi.ingest.cdr`) to a ``calls`` row with the API fields.

- ``channel_formatted``: the channel without its ``-0000001a`` (``;2``) suffix.
- ``direction``: with trunks in the directory, ``IN`` when the channel is a trunk, ``OUT``
  when the destination channel is, else ``INTERNAL`` (sign ``trunk``). Without, the signs
  the CDR carries, in the order :mod:`cdrapi.ingest.direction` documents: ``did``, the
  export's trunk names and call type, the linkedid's earlier legs, the context, the
  channels, the numbers. :attr:`Deriver.signs` counts which sign decided each row.
- ``user_fullname``/``user_id``: the agent: for IN the answering (destination) channel
  or extension, for OUT and INTERNAL the calling one (a user's channel pattern, else its
  extension as the number or as the device name, ``PJSIP/101``, or ``Local/101@...``);
  without a directory match, for OUT and INTERNAL calls the caller id name.
- ``inbound_route``: for IN, the route whose DID is the CDR's ``did`` or ``dst``.
- ``project``: the inbound route's, else the queue's, else the user's.
- ``code``: ``queue`` (``lastapp`` is Queue), else ``inbound``/``outbound``/``internal``;
  ``qname`` from the Queue arguments; ``call_codes`` like ``out no answer``.
- ``call_status_info``: ``DS:<DIALSTATUS>|HC:<HANGUPCAUSE>|HI:<cause text>`` from the
  CDR's ``dialstatus``/``hangupcause`` when present, else from the disposition.
- ``time_end``: the source's end time; when it has none, start + duration (a 0-second
  call ends when it starts), for every source alike.
- ``ring_time``: ``duration - billsec`` (the whole duration of an unanswered call).
- ``is_recovered``: 0 for a missed inbound call until :mod:`cdrapi.ingest.recovery` finds
  it recovered; NULL for other calls.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from cdrapi.ingest.cdr import source_key
from cdrapi.ingest.channels import HEX_SUFFIX, format_channel
from cdrapi.ingest.direction import SIGNS, Directions
from cdrapi.ingest.directory import Directory, InboundRoute, User
from cdrapi.ingest.recordings import RecordingIndex, recording_url

__all__ = ["Deriver", "call_status", "format_channel", "seconds"]

_STATUS = {
    "ANSWERED": "ANSWERED", "ANSWER": "ANSWERED", "NO ANSWER": "NO ANSWER",
    "NOANSWER": "NO ANSWER", "NO_ANSWER": "NO ANSWER", "BUSY": "BUSY", "FAILED": "FAILED",
    "CONGESTION": "CONGESTION",
    # cdr_mysql/cdr_pgsql with integer dispositions (AST_CDR_* values)
    "0": "NO ANSWER", "1": "NO ANSWER", "2": "FAILED", "4": "BUSY", "8": "ANSWERED",
    "16": "CONGESTION",
}  # fmt: skip
# integer AMA flags (one digit) -> their names
_AMA = {"0": "DEFAULT", "1": "OMIT", "2": "BILLING", "3": "DOCUMENTATION"}
# disposition -> (DIALSTATUS, HANGUPCAUSE) when the CDR does not carry them
_IMPLIED = {
    "ANSWERED": ("ANSWER", "16"), "NO ANSWER": ("NOANSWER", "19"), "BUSY": ("BUSY", "17"),
    "FAILED": ("CHANUNAVAIL", ""), "CONGESTION": ("CONGESTION", "34"),
}  # fmt: skip
# Q.850 cause texts, as Asterisk's ast_cause2str gives them
CAUSES = {
    "0": "Unknown", "1": "Unallocated (unassigned) number", "3": "No route to destination",
    "16": "Normal Clearing", "17": "User busy", "18": "No user responding",
    "19": "No answer", "20": "Subscriber absent", "21": "Call Rejected", "22": "Number changed",
    "27": "Destination out of order", "28": "Invalid number format",
    "31": "Normal, unspecified", "34": "Circuit/channel congestion",
    "38": "Network out of order", "41": "Temporary failure",
    "42": "Switching equipment congestion", "127": "Interworking, unspecified",
}  # fmt: skip
# Caller names are cached as a name or None: "" is "not looked up yet" (Deriver._caller_name).
_UNKNOWN = ""
_CODE_WORD = {"IN": "in", "OUT": "out", "INTERNAL": "int"}
_LOCAL = re.compile(r"Local/([^@;/]+)@")
_NAME = re.compile(r'^\s*"?([^"<]*?)"?\s*<')
_PLAIN_TIME = re.compile(
    r"[12]\d{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
)
# A start and an end time, both in that form, written one after the other (one regex call
# for the two in row(): a call costs more than the matching; each is 19 characters).
_PLAIN_PAIR = re.compile(_PLAIN_TIME.pattern * 2).fullmatch
# The last 9 characters of a channel and of the destination channel, both -xxxxxxxx.
_HEX_PAIR = re.compile(r"-[0-9a-f]{8}" * 2).fullmatch
# (direction, status, queued) -> (code, call_codes)
_CODES = {
    (direction, status, queued): (
        "queue"
        if queued
        else {"IN": "inbound", "OUT": "outbound", "INTERNAL": "internal"}[direction],
        f"{'queue' if queued else _CODE_WORD[direction]} {status.lower()}",
    )
    for direction in ("IN", "OUT", "INTERNAL")
    for status in ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION")
    for queued in (False, True)
}


def call_status(disposition: str) -> str | None:
    """The API's call status for an Asterisk disposition (text or integer), or None."""
    return _STATUS.get(disposition.strip().upper())


def seconds(value: str) -> int:
    """Seconds in a duration field: ``125``, ``125.0`` or ``HH:MM:SS`` (``""`` is 0);
    ValueError when it is none of them or negative."""
    if value.isdigit():
        return int(value)
    value = value.strip()
    if ":" in value:  # HH:MM:SS in some exports
        parts = [int(p) for p in value.split(":")]
        total = 0
        for part in parts:
            total = total * 60 + part
        if any(p < 0 for p in parts):
            raise ValueError(value)
        return total
    seconds = int(float(value)) if value else 0
    if seconds < 0:
        raise ValueError(value)
    return seconds


class Deriver:
    """Turns raw CDRs into ``calls`` rows (tuples in :class:`~cdrapi.ingest.row.Row` order)."""

    def __init__(
        self,
        directory: Directory | None = None,
        *,
        gmt_to: ZoneInfo | None = None,
        recordings: RecordingIndex | None = None,
        public_url: str = "",
    ) -> None:
        self.directory = directory or Directory()
        self.gmt_to = gmt_to
        self.recordings = recordings
        self.public_url = public_url
        self._trunks = bool(self.directory.trunks)
        self._has_users = bool(self.directory.users)  # else no call has a user
        directory = self.directory
        # people() finds no one for any call (row() then takes only the caller id's name)
        self._nobody = not (directory.users or directory.routes or directory.queue_projects)
        self._users: dict[tuple[str, str, str], User | None] = {}
        self._directions = directions = Directions(self.directory)
        self._decisive, self._calls = directions.decisive.get, directions.calls
        self._undeclared = directions.undeclared
        # (status, dialstatus, hangupcause, direction, queued) -> (info, code, call_codes)
        self._texts: dict[tuple[str, str, str, str, bool], tuple[str, str, str]] = {}
        self._names: dict[str, str | None] = {}  # caller id -> its name
        # Times already in the stored form need no conversion (see _time).
        self._plain = _PLAIN_TIME.fullmatch if gmt_to is None else None
        #: How the direction of each row was decided since the last take_signs: sign -> rows
        #: (a dict with every sign at 0 to start with: twice as fast as a Counter here).
        self.signs: dict[str, int] = dict.fromkeys(SIGNS, 0)

    def take_signs(self) -> dict[str, int]:
        """The direction signs counted since the last call (and start counting again)."""
        self._directions.bound()
        self._calls = self._directions.calls  # a new dict once bound() moved the memory on
        signs, self.signs = self.signs, dict.fromkeys(SIGNS, 0)
        return {sign: rows for sign, rows in signs.items() if rows}

    def _time(self, value: str) -> str:
        if self.gmt_to is None and _PLAIN_TIME.fullmatch(value):
            return value
        when = dt.datetime.fromisoformat(value.strip())
        if self.gmt_to is not None:
            when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when
            when = when.astimezone(self.gmt_to)
        elif when.tzinfo is not None:
            when = when.replace(tzinfo=None)
        return when.strftime("%Y-%m-%d %H:%M:%S")

    def _user(self, channel: str, raw_channel: str, number: str) -> User | None:
        key = (channel, number, raw_channel if raw_channel.startswith("Local/") else "")
        try:
            return self._users[key]
        except KeyError:
            pass
        directory = self.directory
        user = directory.user_of_channel(channel) if channel else None
        if user is None:
            user = directory.by_extension.get(number)
        if user is None and "/" in channel:  # the device named as the extension: PJSIP/101
            user = directory.by_extension.get(channel.split("/", 1)[1])
        if user is None and key[2]:
            local = _LOCAL.match(raw_channel)
            user = directory.by_extension.get(local.group(1)) if local else None
        if len(self._users) > 200_000:
            self._users.clear()
        self._users[key] = user
        return user

    def row(self, cdr: Sequence[str]) -> tuple[Any, ...]:
        """The row for ``cdr`` (a plain tuple in :class:`~cdrapi.ingest.row.Row` order);
        raises ValueError naming what is wrong with it.

        The steps below, in turn: :meth:`times`, :meth:`direction`, :meth:`identity`,
        :meth:`people`, :meth:`outcome`, :meth:`recording`. Where a step's commonest case
        is a cache look-up, or a few comparisons, it is taken here without the call (on
        a million lines a call costs as much as the work): each such copy says which step
        it stands for, and tests/ingest/test_derive_steps.py checks row() against the
        steps."""
        # CDR_FIELDS order (cdr.py), taken apart at once: cheaper than an index per field.
        (accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
         raw_start, _answer, raw_end, duration_text, billsec_text, disposition, amaflags,
         uniqueid, userfield, peeraccount, linkedid, sequence, did, recordingfile, cnum, cnam,
         dialstatus, cause, srctrunk, dsttrunk, calltype) = cdr  # fmt: skip
        # (most calls are answered: the comparison costs less than hashing the text)
        status = (
            "ANSWERED"
            if disposition == "ANSWERED"
            else _STATUS.get(disposition) or _STATUS.get(disposition.strip().upper())
        )
        if status is None:
            raise ValueError(f"unknown disposition {disposition!r}")
        if (  # times(), for times already stored as they are and whole seconds
            self._plain is not None
            and len(raw_start) == 19
            and _PLAIN_PAIR(raw_start + raw_end)
            and duration_text.isdigit()
            and billsec_text.isdigit()
        ):
            start, end = raw_start, raw_end
            duration, billsec = int(duration_text), int(billsec_text)
        else:
            start, end, duration, billsec = self.times(
                raw_start, raw_end, duration_text, billsec_text
            )
        # format_channel, its commonest form (a -0000001a suffix) without the call
        if _HEX_PAIR(channel[-9:] + dstchannel[-9:]):  # both channels have one
            chan, dchan = channel[:-9], dstchannel[:-9]
        else:
            hexed = HEX_SUFFIX
            chan = channel[:-9] if hexed(channel, len(channel) - 9) else format_channel(channel)
            dchan = (
                dstchannel[:-9]
                if hexed(dstchannel, len(dstchannel) - 9)
                else format_channel(dstchannel)
            )
        if self._trunks or did or srctrunk or dsttrunk or calltype:
            direction, sign = self.direction(
                did, srctrunk, dsttrunk, calltype, dcontext, chan, dchan, src, dst,
                uniqueid, linkedid,
            )  # fmt: skip
        else:
            kind = self._decisive(dcontext)
            if kind and linkedid == uniqueid:
                # direction(), its commonest case (Directions.undeclared has it): the first
                # leg of a call in an IN or OUT context (the memory is bounded in
                # take_signs, after each batch)
                direction, sign = kind, "context"
                if linkedid:  # (none in a 16-column Master.csv)
                    self._calls[linkedid] = kind
            else:
                direction, sign = self._undeclared(
                    dcontext, chan, dchan, src, dst, uniqueid, linkedid
                )
        self.signs[sign] += 1
        if uniqueid and sequence and clid:  # identity(), its commonest case
            key = f"u:{uniqueid}:{sequence}"
            number = int(sequence) if sequence.isdigit() else None
        else:
            key, number, clid = self.identity(cdr, uniqueid, sequence, clid, cnum, cnam, src)
        qname = None
        if len(lastapp) == 5 and lastapp.lower() == "queue":
            qname = lastdata.split(",", 1)[0] or None
        if self._nobody:  # people(), with no users, routes or queue projects to find
            user_id = project_id = route = fullname = None
            if direction != "IN":
                fullname = self._names.get(clid, _UNKNOWN)
                if fullname is _UNKNOWN:
                    fullname = self._caller_name(clid)
                if fullname == src:  # a caller id that names the number: no name
                    fullname = None
        else:
            user_id, fullname, project_id, route = self.people(
                direction, chan, dchan, channel, dstchannel, src, dst, did, qname, clid
            )
        # outcome(), when its texts are known (a cache look-up)
        texts = self._texts.get((status, dialstatus, cause, direction, qname is not None))
        if texts is None:
            texts = self.outcome(status, dialstatus, cause, direction, qname is not None)
        info, code, codes = texts
        rec_file = rec_url = None
        if self.recordings is not None:
            rec_file, rec_url = self.recording(uniqueid, recordingfile, start)
        return (
            key, uniqueid, linkedid or uniqueid, number, start, end, clid, src, dst,
            direction, channel, dstchannel, dcontext, lastapp, lastdata,
            _AMA.get(amaflags, amaflags) if len(amaflags) == 1 else amaflags,
            userfield or None, peeraccount or None,
            did or None, chan, dchan, user_id, fullname, qname, code,
            status, info, codes, accountcode or None, rec_file, rec_url, project_id,
            self.directory.project_names.get(project_id) if project_id else None,
            route.id if route else None, route.name if route else None,
            0 if direction == "IN" and status != "ANSWERED" else None,
            billsec, duration, duration - billsec if duration > billsec else 0,
        )  # fmt: skip

    def times(
        self, raw_start: str, raw_end: str, duration_text: str, billsec_text: str
    ) -> tuple[str, str, int, int]:
        """Step *times*: ``(start, end, duration, billsec)``, times in the stored form
        (``YYYY-MM-DD HH:MM:SS``, in the configured zone when the source is UTC); an end
        time the source lacks is start + duration (a 0-second call ends as it starts)."""
        plain = self._plain
        start, end = raw_start, raw_end or None
        if plain is None or not plain(start):
            try:
                start = self._time(start)
            except ValueError:
                raise ValueError(f"bad start time {raw_start!r}") from None
        if end is not None and (plain is None or not plain(end)):
            try:
                end = self._time(end)
            except ValueError:
                raise ValueError(f"bad end time {raw_end!r}") from None
        try:
            duration = int(duration_text) if duration_text.isdigit() else seconds(duration_text)
            billsec = int(billsec_text) if billsec_text.isdigit() else seconds(billsec_text)
        except ValueError:
            raise ValueError(f"bad duration/billsec {duration_text!r}/{billsec_text!r}") from None
        if end is None:  # sources without an end time: start + duration, for all alike
            if duration:
                later = dt.datetime.fromisoformat(start) + dt.timedelta(seconds=duration)
                end = later.strftime("%Y-%m-%d %H:%M:%S")
            else:
                end = start
        return start, end, duration, billsec

    def direction(
        self, did: str, srctrunk: str, dsttrunk: str, calltype: str, context: str,
        chan: str, dchan: str, src: str, dst: str, uniqueid: str, linkedid: str,
    ) -> tuple[str, str]:  # fmt: skip
        """Step *direction*: ``(direction, sign)``: configured trunks decide alone (sign
        ``trunk``), else the CDR's signs (:meth:`Directions.decide`). ``chan`` and
        ``dchan`` are the channels without their suffix."""
        if self._trunks:
            directory = self.directory
            if directory.is_trunk(chan):
                return "IN", "trunk"
            return ("OUT" if directory.is_trunk(dchan) else "INTERNAL"), "trunk"
        return self._directions.decide(
            did, srctrunk, dsttrunk, calltype, context, chan, dchan, src, dst, uniqueid,
            linkedid,
        )  # fmt: skip

    @staticmethod
    def identity(
        cdr: Sequence[str], uniqueid: str, sequence: str, clid: str, cnum: str, cnam: str,
        src: str,
    ) -> tuple[str, int | None, str]:  # fmt: skip
        """Step *identity*: ``(source_key, sequence, caller_id)``: the key that keeps a CDR
        read twice one call (:func:`cdrapi.ingest.cdr.source_key`), the sequence as a
        number, and a caller id made from ``cnam``/``cnum`` when the source has none."""
        key = source_key(cdr)
        if not clid and (cnam or cnum):
            clid = f'"{cnam or cnum or src}" <{cnum or src}>'
        return key, int(sequence) if sequence.isdigit() else None, clid

    def people(
        self, direction: str, chan: str, dchan: str, channel: str, dstchannel: str,
        src: str, dst: str, did: str, qname: str | None, clid: str,
    ) -> tuple[int | None, str | None, int | None, InboundRoute | None]:  # fmt: skip
        """Step *people*: ``(user_id, user_fullname, project_id, inbound_route)``: the
        agent (for IN the answering side, else the calling side, then for INTERNAL the
        called side), without one the caller id's name for calls not IN; the inbound
        route of an IN call's DID (or dst); the route's project, else the queue's, else
        the user's."""
        directory = self.directory
        route = user = None
        inbound_call = direction == "IN"
        if inbound_call:
            if self._has_users:
                user = self._user(dchan, dstchannel, dst)
            routes = directory.routes
            if routes:
                route = routes.get(did) or routes.get(dst)
        elif self._has_users:
            user = self._user(chan, channel, src)
            if user is None and direction == "INTERNAL":
                user = self._user(dchan, dstchannel, dst)
        project_id = (
            (route.project_id if route else None)
            or (directory.queue_projects.get(qname) if qname else None)
            or (user.project_id if user else None)
        )
        fullname = user_id = None
        if user is not None:
            fullname, user_id = user.fullname, user.id
        if fullname is None and not inbound_call:
            fullname = self._names.get(clid, _UNKNOWN)
            if fullname is _UNKNOWN:
                fullname = self._caller_name(clid)
            if fullname == src:  # a caller id that names the number: no name
                fullname = None
        return user_id, fullname, project_id, route

    def outcome(
        self, status: str, dialstatus: str, cause: str, direction: str, queued: bool
    ) -> tuple[str, str, str]:
        """Step *outcome*: ``(call_status_info, code, call_codes)`` (cached: few
        distinct)."""
        outcome = (status, dialstatus, cause, direction, queued)
        texts = self._texts.get(outcome)
        if texts is None:
            ds, hc = (dialstatus, cause) if dialstatus or cause else _IMPLIED[status]
            info = f"DS:{ds}|HC:{hc}|HI:{CAUSES.get(hc, '')}"
            texts = self._texts[outcome] = (info, *_CODES[(direction, status, queued)])
        return texts

    def recording(
        self, uniqueid: str, recordingfile: str, start: str
    ) -> tuple[str | None, str | None]:
        """Step *recording*: ``(recording_file, recording_url)`` from the recordings
        index (``(None, None)`` without one, or when no file is the call's)."""
        if self.recordings is None:
            return None, None
        rec_file = self.recordings.find(uniqueid, recordingfile, start)
        return rec_file, recording_url(self.public_url, rec_file) if rec_file else None

    def _caller_name(self, clid: str) -> str | None:
        """The name in a caller id (``"Maria" <101>`` -> ``Maria``), unless it is a number
        (row() also drops a name equal to the caller's number)."""
        named = _NAME.match(clid)
        name = named.group(1).strip() if named else ""
        found = name if name and not name.isdigit() else None
        if len(self._names) > 200_000:
            self._names.clear()
        self._names[clid] = found
        return found
