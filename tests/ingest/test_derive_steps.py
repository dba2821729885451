"""Derivation's named steps, each table-tested directly, and row() checked against them.

Deriver.row takes the commonest case of four steps inline (for speed); the last tests
derive every fixture CDR and check that each field row() wrote is what its step says.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cdrapi.ingest.cdr import CDR_FIELDS, source_key
from cdrapi.ingest.derive import Deriver
from cdrapi.ingest.directory import directory_from
from cdrapi.ingest.recordings import RecordingIndex
from cdrapi.ingest.row import ROW_FIELDS, Row
from tests.ingest.conftest import FIXTURES, raw_cdr

DIRECTORY = {
    "projects": [{"id": 1, "name": "Suport"}, {"id": 2, "name": "Vanzari"}],
    "users": [
        {"id": 11, "fullname": "Maria Ionescu", "extension": "101", "project": 1},
        {"id": 12, "fullname": "Andrei Pop", "extension": "102", "project": 2},
    ],
    "inbound_routes": [{"id": 5, "did": "0312285000", "name": "Linie suport", "project": 1}],
    "queues": [{"name": "vanzari", "project": 2}],
}


def test_the_row_names_every_calls_column_ingestion_writes() -> None:
    row = Deriver().row(raw_cdr(src="101", dst="102", clid='"Maria" <101>', sequence="3"))
    named = Row._make(row)
    assert len(row) == len(ROW_FIELDS) == 39
    assert (named.source_key, named.sequence, named.time, named.call_status) == (
        "u:1714986000.1:3",
        3,
        "2024-05-06 09:00:00",
        "ANSWERED",
    )
    assert named._asdict()["ring_time"] == 5


@pytest.mark.parametrize(
    ("raw", "gmt_to", "want"),
    [
        (("2024-05-06 09:00:00", "2024-05-06 09:00:30", "30", "25"), None,
         ("2024-05-06 09:00:00", "2024-05-06 09:00:30", 30, 25)),
        (("2024-05-06T09:00:00", "", "90", "60"), None,  # no end: start + duration
         ("2024-05-06 09:00:00", "2024-05-06 09:01:30", 90, 60)),
        (("2024-05-06 09:00:00", "", "0", "0"), None,  # a 0-second call ends as it starts
         ("2024-05-06 09:00:00", "2024-05-06 09:00:00", 0, 0)),
        (("2024-05-06 09:00:00+03:00", "2024-05-06 09:00:30+03:00", "30.0", "00:00:25"), None,
         ("2024-05-06 09:00:00", "2024-05-06 09:00:30", 30, 25)),
        (("2024-05-06 06:00:00", "2024-05-06 06:02:05", "00:02:05", "2:00"),
         ZoneInfo("Europe/Bucharest"),  # usegmtime: UTC to the PBX's zone
         ("2024-05-06 09:00:00", "2024-05-06 09:02:05", 125, 120)),
        (("2024-10-27 00:59:59", "2024-10-27 01:00:01", "2", "2"),
         ZoneInfo("Europe/Bucharest"),  # across the fall-back hour
         ("2024-10-27 03:59:59", "2024-10-27 03:00:01", 2, 2)),
    ],
)  # fmt: skip
def test_times(raw: tuple[str, str, str, str], gmt_to: ZoneInfo | None,
               want: tuple[str, str, int, int]) -> None:  # fmt: skip
    assert Deriver(gmt_to=gmt_to).times(*raw) == want


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (("yesterday", "", "1", "1"), "bad start time 'yesterday'"),
        (("2024-05-06 09:00:00", "2024-13-01 00:00:00", "1", "1"),
         "bad end time '2024-13-01 00:00:00'"),
        (("2024-05-06 09:00:00", "", "-5", "0"), "bad duration/billsec '-5'/'0'"),
        (("2024-05-06 09:00:00", "", "10", "ten"), "bad duration/billsec '10'/'ten'"),
    ],
)  # fmt: skip
def test_times_refuses_what_is_no_time(raw: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Deriver().times(*raw)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("fields", "trunks", "want"),
    [
        ({"chan": "PJSIP/orange"}, True, ("IN", "trunk")),
        ({"chan": "PJSIP/101", "dchan": "PJSIP/orange"}, True, ("OUT", "trunk")),
        ({"chan": "PJSIP/101", "dchan": "PJSIP/102"}, True, ("INTERNAL", "trunk")),
        ({"did": "0312285000", "context": "from-internal"}, False, ("IN", "did")),
        ({"srctrunk": "orange"}, False, ("IN", "trunk-name")),
        ({"dsttrunk": "orange"}, False, ("OUT", "trunk-name")),
        ({"calltype": "Outbound"}, False, ("OUT", "call-type")),
        ({"context": "from-pstn"}, False, ("IN", "context")),
        ({"context": "from-internal", "chan": "PJSIP/101", "src": "101",
          "dchan": "PJSIP/orange", "dst": "0744000001"}, False, ("OUT", "context")),
        ({"context": "from-internal", "chan": "PJSIP/101", "src": "101",
          "dchan": "PJSIP/102", "dst": "102"}, False, ("INTERNAL", "channel")),
        ({"context": "somewhere", "chan": "Local/x@y", "src": "s"}, False,
         ("INTERNAL", "default")),
    ],
)  # fmt: skip
def test_direction(fields: dict[str, str], trunks: bool, want: tuple[str, str]) -> None:
    tables = {"trunks": [{"id": 1, "name": "orange", "channel": "PJSIP/orange"}]} if trunks else {}
    deriver = Deriver(directory_from(tables))
    args = {"did": "", "srctrunk": "", "dsttrunk": "", "calltype": "", "context": "",
            "chan": "", "dchan": "", "src": "", "dst": "", "uniqueid": "1.1",
            "linkedid": "1.1"} | fields  # fmt: skip
    assert deriver.direction(**args) == want


def test_identity() -> None:
    keyed = raw_cdr(uniqueid="1714986000.7", sequence="12")
    assert Deriver.identity(keyed, "1714986000.7", "12", "", "", "", "101") == (
        "u:1714986000.7:12",
        12,
        "",
    )
    bare = raw_cdr(uniqueid="", src="0721000001")  # no uniqueid: a digest of the whole CDR
    key, number, clid = Deriver.identity(bare, "", "", "", "0721000001", "Ion", "0721000001")
    assert key == source_key(bare) and key.startswith("h:") and len(key) == 34
    assert (number, clid) == (None, '"Ion" <0721000001>')
    assert Deriver.identity(bare, "", "x", "", "", "", "5")[1:] == (None, "")


@pytest.mark.parametrize(
    ("call", "want"),
    [
        # IN: the answering extension, the route of the DID and its project
        (("IN", "PJSIP/orange", "PJSIP/101", "0312285000", "101", "0312285000", None, ""),
         (11, "Maria Ionescu", 1, 5)),
        # IN to a queue without a route: the queue's project wins over the user's
        (("IN", "PJSIP/orange", "PJSIP/101", "0721000001", "101", "", "vanzari", ""),
         (11, "Maria Ionescu", 2, None)),
        # OUT: the calling extension (the device named as the extension)
        (("OUT", "PJSIP/102", "PJSIP/orange", "102", "0744000001", "", None, ""),
         (12, "Andrei Pop", 2, None)),
        # INTERNAL from a phone not in the directory: the called one
        (("INTERNAL", "PJSIP/199", "PJSIP/101", "199", "101", "", None, '"Guest" <199>'),
         (11, "Maria Ionescu", 1, None)),
        # OUT from no user: the caller id's name, unless it is the number itself
        (("OUT", "PJSIP/150", "PJSIP/orange", "150", "0744", "", None, '"Ana" <150>'),
         (None, "Ana", None, None)),
        (("OUT", "PJSIP/150", "PJSIP/orange", "150", "0744", "", None, '"150" <150>'),
         (None, None, None, None)),
        (("OUT", "PJSIP/150", "PJSIP/orange", "150", "0744", "", None, '"0744" <150>'),
         (None, None, None, None)),  # a name of digits is no name
        # IN from no user: no caller name (the caller is not an agent)
        (("IN", "PJSIP/orange", "PJSIP/150", "0721", "150", "", None, '"Ion" <0721>'),
         (None, None, None, None)),
    ],
)  # fmt: skip
def test_people(call: tuple[str, str, str, str, str, str, str | None, str],
                want: tuple[int | None, str | None, int | None, int | None]) -> None:  # fmt: skip
    direction, chan, dchan, src, dst, did, qname, clid = call
    deriver = Deriver(directory_from(DIRECTORY))
    user_id, fullname, project_id, route = deriver.people(
        direction, chan, dchan, f"{chan}-0000001a", f"{dchan}-0000001b", src, dst, did, qname,
        clid,
    )  # fmt: skip
    assert (user_id, fullname, project_id, route.id if route else None) == want


@pytest.mark.parametrize(
    ("outcome", "want"),
    [
        (("ANSWERED", "", "", "IN", False), ("DS:ANSWER|HC:16|HI:Normal Clearing", "inbound",
                                             "in answered")),
        (("NO ANSWER", "", "", "OUT", False), ("DS:NOANSWER|HC:19|HI:No answer", "outbound",
                                               "out no answer")),
        (("BUSY", "BUSY", "17", "INTERNAL", False), ("DS:BUSY|HC:17|HI:User busy",
                                                     "internal", "int busy")),
        (("FAILED", "CHANUNAVAIL", "", "IN", True), ("DS:CHANUNAVAIL|HC:|HI:", "queue",
                                                     "queue failed")),
        (("CONGESTION", "", "999", "OUT", False), ("DS:|HC:999|HI:", "outbound",
                                                   "out congestion")),
    ],
)  # fmt: skip
def test_outcome(outcome: tuple[str, str, str, str, bool], want: tuple[str, str, str]) -> None:
    deriver = Deriver()
    assert deriver.outcome(*outcome) == want
    assert deriver.outcome(*outcome) is deriver.outcome(*outcome)  # cached


def test_recording(tmp_path: Path) -> None:
    day = tmp_path / "2024" / "05" / "06"
    day.mkdir(parents=True)
    (day / "in-0312285000-0721000001-20240506-090000-1714986000.1.wav").write_bytes(b"RIFF")
    found = Deriver(recordings=RecordingIndex(tmp_path), public_url="https://pbx.example/")
    assert found.recording("1714986000.1", "", "2024-05-06 09:00:00") == (
        "2024/05/06/in-0312285000-0721000001-20240506-090000-1714986000.1.wav",
        "https://pbx.example/recordings/2024/05/06/in-0312285000-0721000001-20240506-090000-1714986000.1.wav",
    )
    assert found.recording("1714986000.9", "", "2024-05-06 09:00:00") == (None, None)
    assert Deriver().recording("1714986000.1", "", "2024-05-06 09:00:00") == (None, None)


def _fixture_cdrs() -> list[tuple[str, ...]]:
    """Raw CDRs of the 21-column cdr_csv fixture, and variants that take each step's
    slow path (no end time, durations as HH:MM:SS, no caller id, no uniqueid)."""
    text = (FIXTURES / "cdr_csv-21col-Master.csv").read_text("utf-8", "replace")
    out = []
    for fields in csv.reader(io.StringIO(text)):
        base = dict(zip(CDR_FIELDS, fields, strict=False))
        out.append(raw_cdr(**base))
        out.append(raw_cdr(**(base | {"end": "", "duration": "0:01:05", "clid": ""})))
        out.append(raw_cdr(**(base | {"uniqueid": "", "start": base["start"].replace(" ", "T")})))
    return out


@pytest.mark.parametrize("with_directory", [False, True])
def test_row_writes_what_each_step_says(with_directory: bool) -> None:
    tables = DIRECTORY if with_directory else {}
    cdrs = _fixture_cdrs()
    assert len(cdrs) >= 30
    deriver, steps = Deriver(directory_from(tables)), Deriver(directory_from(tables))
    for raw in cdrs:
        row = Row._make(deriver.row(raw))
        f = dict(zip(CDR_FIELDS, raw, strict=True))
        assert (row.time, row.time_end, row.duration, row.billsec) == steps.times(
            f["start"], f["end"], f["duration"], f["billsec"]
        )
        assert row.direction == steps.direction(
            f["did"], f["srctrunk"], f["dsttrunk"], f["calltype"], f["dcontext"],
            row.channel_formatted, row.dstchannel_formatted, f["src"], f["dst"],
            f["uniqueid"], f["linkedid"],
        )[0]  # fmt: skip
        assert (row.source_key, row.sequence, row.caller_id) == steps.identity(
            raw, f["uniqueid"], f["sequence"], f["clid"], f["cnum"], f["cnam"], f["src"]
        )
        user_id, fullname, project_id, route = steps.people(
            row.direction, row.channel_formatted, row.dstchannel_formatted, f["channel"],
            f["dstchannel"], f["src"], f["dst"], f["did"], row.qname, row.caller_id,
        )  # fmt: skip
        assert (row.user_id, row.user_fullname, row.project_id) == (user_id, fullname, project_id)
        assert row.inbound_route_id == (route.id if route else None)
        assert (row.call_status_info, row.code, row.call_codes) == steps.outcome(
            row.call_status, f["dialstatus"], f["hangupcause"], row.direction,
            row.qname is not None,
        )  # fmt: skip
