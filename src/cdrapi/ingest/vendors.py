"""The CSV exports of the PBXs users run: their column names and what each needs fixed.

Each :class:`Format` is recognised by a few columns only it has (its *signature*) and
says, in its own terms, which raw CDR field (:data:`cdrapi.ingest.cdr.CDR_FIELDS`) a column
holds; ``-`` lists the columns it has that carry nothing stored. Columns it does not
list are read by the common names of :data:`cdrapi.ingest.headers.ALIASES`. Sources of
each format are in its comment; a fixture per format is in ``tests/fixtures/vendors/``.

Header names are compared normalised (:func:`norm`): lower case, a parenthesised unit
such as ``(s)`` dropped, letters and digits only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["FORMATS", "RING", "Format", "norm"]

_UNIT = re.compile(r"\([^)]*\)")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")

#: A pseudo-field a format may read besides the raw CDR fields: the ring time, for
#: exports with ring and talk time but no duration (3CX).
RING = "ring"


def norm(name: str) -> str:
    """A header name as matched: ``"Call Duration(s)"`` -> ``"callduration"``."""
    return _NOT_ALNUM.sub("", _UNIT.sub("", name.lower()))


@dataclass(frozen=True)
class Format:
    """A vendor export: the columns that tell it (``signature``), its header names ->
    fields (``None``: a column it has that carries nothing stored), and its fixes."""

    name: str
    signature: tuple[str, ...]
    columns: dict[str, str | None]
    statuses: dict[str, str] = field(default_factory=dict)  # its status -> disposition
    times: bool = False  # times may be written as the PBX displays them (07/01/2026 ...)
    parties: bool = False  # numbers may be "Name <101>" or "Name (101)"
    seconds_text: bool = False  # durations like "125s (2m 5s)"


def _format(
    name: str,
    signature: str,
    columns: dict[str, str],
    statuses: dict[str, str] | None = None,
    *,
    times: bool = False,
    parties: bool = False,
    seconds_text: bool = False,
) -> Format:
    table: dict[str, str | None] = {}
    for target, names in columns.items():
        for header in names.split(","):
            table[norm(header)] = None if target == "-" else target
    keys = tuple(norm(s) for s in signature.split(","))
    return Format(name, keys, table, statuses or {}, times, parties, seconds_text)


# fmt: off
FORMATS: tuple[Format, ...] = (
    # Grandstream UCM61xx/62xx/63xx "CDR > Download" (UCM6xxx CDR and REC API guide, user
    # manuals "Downloaded CDR file"; GXW450x CDR report fields; the 1.0.x firmware's
    # "Call From"/"Call To"). Call Time is start to end, Talk Time answer to end, both
    # H:MM:SS; Session groups the legs of a call.
    _format("Grandstream UCM", "calltime,talktime", {
        "accountcode": "Account Code", "src": "Caller Number,Call From",
        "dst": "Callee Number,Call To", "dcontext": "Context", "clid": "CallerID Number,CallerID",
        "channel": "Source Channel", "dstchannel": "Dest. Channel,Dest Channel",
        "lastapp": "Last app.,Lastapp", "lastdata": "Last date,Lastdata,Last data",
        "start": "Start Time", "answer": "Answer Time", "end": "End Time",
        "duration": "Call Time", "billsec": "Talk Time", "disposition": "Disposition,Status",
        "amaflags": "AMA Flags,Amaflags", "uniqueid": "Unique ID,Uniqueid",
        "userfield": "Log Userfield,Userfield", "cnam": "Caller Name", "linkedid": "Session",
        "calltype": "Action Type", "srctrunk": "Source Trunk Name",
        "dsttrunk": "Destination Trunk Name",
        "-": "Dest Channel Extension,Answered by,Premier Caller,AcctId,channel_ext,"
        "dstchannel_ext,service",
    }),
    # Yeastar P-Series "CDR > Download" (administrator guide "CDR parameters": ID, Time,
    # Call From, Call To, Call Duration, Ring Duration, Talk Duration, Status, Reason,
    # Source Trunk, Destination Trunk, Communication Type, DID/DDI, Outbound Caller ID,
    # Caller IP Address, PIN Code, Recording File) and S-Series ("Call Duration(s)",
    # "Talk Duration(s)", "DID"). Times follow the PBX's display format (MM/DD/YYYY,
    # DD/MM/YYYY or YYYY/MM/DD, 24 or 12 hours); durations seconds or HH:MM:SS; the
    # parties "Name<101>"; VOICEMAIL: "the callee didn't answer, and received a voicemail".
    _format("Yeastar", "callfrom,callto,talkduration", {
        "uniqueid": "ID", "start": "Time,Date", "src": "Call From", "dst": "Call To",
        "duration": "Call Duration", "billsec": "Talk Duration", "disposition": "Status",
        "srctrunk": "Source Trunk", "dsttrunk": "Destination Trunk",
        "calltype": "Communication Type,Call Type", "did": "DID/DDI,DID,DID Number",
        "accountcode": "PIN Code", "recordingfile": "Recording File,Recording",
        "-": "Ring Duration,Reason,Outbound Caller ID,Caller IP Address,Last Participant,"
        "Disconnected by,Call Notes",
    }, {"ANSWERD": "ANSWERED", "VOICEMAIL": "NO ANSWER", "ABANDONED": "NO ANSWER",
        "NO ANSWERED": "NO ANSWER"}, times=True, parties=True),
    # 3CX call history / call log report export: "Call Time,Call ID,From,To,Direction,
    # Status,Ringing,Talking,Cost", parties "Name (101)", Ringing/Talking HH:MM:SS.
    _format("3CX", "calltime,callid,direction,talking", {
        "start": "Call Time", "uniqueid": "Call ID", "src": "From", "dst": "To",
        "calltype": "Direction", "disposition": "Status", RING: "Ringing", "billsec": "Talking",
        "-": "Cost,Call Activity Details,Reason,Agent,Queue",
    }, {"UNANSWERED": "NO ANSWER", "MISSED": "NO ANSWER"}, times=True, parties=True),
    # Issabel / Elastix "Reports > CDR Report" export (modules/cdrreport/index.php): Date,
    # Source, Ring Group, Destination, Src. Channel, Account Code, Dst. Channel, Status,
    # Duration; Duration is the billed seconds written "125s (2m 5s)".
    _format("Issabel CDR Report", "date,ringgroup,status,duration", {
        "start": "Date", "src": "Source", "dst": "Destination", "channel": "Src. Channel",
        "accountcode": "Account Code", "dstchannel": "Dst. Channel", "disposition": "Status",
        "billsec": "Duration", "-": "Ring Group",
    }, seconds_text=True),
    # MiKoPBX call history table cdr_general (CallDetailRecordsBase model), as CSV.
    _format("MiKoPBX", "srcchan,dstchan,srcnum,dstnum", {
        "start": "start", "answer": "answer", "end": "endtime", "channel": "src_chan",
        "src": "src_num", "dstchannel": "dst_chan", "dst": "dst_num", "uniqueid": "UNIQUEID",
        "linkedid": "linkedid", "did": "did", "disposition": "disposition",
        "recordingfile": "recordingfile", "dialstatus": "dialstatus", "lastapp": "appname",
        "duration": "duration", "billsec": "billsec",
        "-": "id,from_account,to_account,transfer,is_app,work_completed,src_call_id,"
        "dst_call_id,verbose_call_id,a_transfer",
    }),
    # PBXware (Bicom) cdr table as exported to CSV (HOWTO CDR table structure): the
    # asteriskcdrdb names plus these; its disposition may be UNKNOWN.
    _format("PBXware", "acctid,tenant,billamount", {"-": "AcctId,tenant,billamount"},
            {"UNKNOWN": "FAILED"}),
    # asteriskcdrdb.cdr (FreePBX "CDR Reports > Download CSV": calldate, clid, src, dst,
    # dcontext, channel, dstchannel, lastapp, lastdata, duration, billsec, disposition,
    # amaflags, accountcode, uniqueid, userfield, did, cnum, cnam, outbound_cnum,
    # outbound_cnam, dst_cnam, recordingfile, linkedid, peeraccount, sequence; VitalPBX's
    # cdr table the same): Asterisk's names; these carry nothing stored.
    _format("asteriskcdrdb.cdr", "calldate,clid,dcontext,lastapp", {
        "-": "outbound_cnum,outbound_cnam,dst_cnam,tenant,cos,id",
    }),
)
# fmt: on
