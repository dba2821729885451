"""Vendor CSV exports (tests/fixtures/vendors/, one file per format, written from each
vendor's published column names) import with every line stored and the right fields."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdrapi.ingest import IngestRun, Reject, ingest_csv
from cdrapi.ingest.cdr import CDR_INDEX
from cdrapi.ingest.layouts import LineParser
from tests.ingest.conftest import records

VENDORS = Path(__file__).parents[1] / "fixtures" / "vendors"

# file -> each stored call: (time, source, destination, call_status, bill, duration)
EXPECTED = {
    "grandstream-ucm.csv": [
        ("2026-07-01 09:00:00", "0744000111", "6300", "ANSWERED", "00:02:00", "00:02:06"),
        ("2026-07-01 09:00:00", "0744000111", "6300", "NO ANSWER", "00:00:00", "00:00:06"),
        ("2026-07-01 10:00:00", "1001", "0212345678", "ANSWERED", "00:05:00", "00:05:12"),
        ("2026-07-01 11:00:00", "1002", "1003", "BUSY", "00:00:00", "00:00:02"),
        ("2026-07-01 12:00:00", "1003", "1001", "NO ANSWER", "00:00:00", "00:00:30"),
    ],
    "yeastar-p-series.csv": [  # MM/DD/YYYY, 12-hour times
        ("2026-07-13 09:15:00", "0744000111", "1001", "ANSWERED", "00:02:00", "00:02:10"),
        ("2026-07-13 09:15:00", "0744000111", "1002", "NO ANSWER", "00:00:00", "00:00:10"),
        ("2026-07-13 13:30:05", "1001", "0212345678", "ANSWERED", "00:01:00", "00:01:05"),
        ("2026-07-13 14:26:40", "1002", "1003", "BUSY", "00:00:00", "00:00:03"),
        ("2026-07-13 15:26:40", "0744000222", "1003", "NO ANSWER", "00:00:15", "00:00:40"),
    ],
    "yeastar-s-series.csv": [  # DD/MM/YYYY, HH:MM:SS durations
        ("2026-07-14 09:00:00", "0744000111", "1001", "ANSWERED", "00:02:00", "00:02:05"),
        ("2026-07-14 10:00:00", "1001", "0744000333", "NO ANSWER", "00:00:00", "00:00:30"),
        ("2026-07-14 11:00:00", "1002", "1003", "BUSY", "00:00:00", "00:00:04"),
        ("2026-07-14 12:00:00", "1003", "0212345678", "ANSWERED", "00:01:00", "00:01:10"),
    ],
    "3cx-call-log.csv": [  # duration = Ringing + Talking
        ("2026-07-01 09:00:00", "0744000111", "1001", "ANSWERED", "00:02:00", "00:02:05"),
        ("2026-07-01 10:00:00", "1001", "0212345678", "ANSWERED", "00:05:00", "00:05:12"),
        ("2026-07-01 11:00:00", "1002", "1003", "NO ANSWER", "00:00:00", "00:00:20"),
        ("2026-07-01 12:00:00", "0744000222", "1002", "NO ANSWER", "00:00:00", "00:00:15"),
        ("2026-07-01 12:00:15", "0744000222", "1001", "ANSWERED", "00:01:30", "00:01:34"),
    ],
    "issabel-cdr-report.csv": [  # Duration "125s (2m 5s)" is the billed time
        ("2026-07-01 09:00:00", "0744000111", "600", "ANSWERED", "00:02:05", "00:02:05"),
        ("2026-07-01 09:30:00", "0744000222", "600", "NO ANSWER", "00:00:00", "00:00:00"),
        ("2026-07-01 10:00:00", "1001", "0212345678", "ANSWERED", "00:00:45", "00:00:45"),
        ("2026-07-01 11:00:00", "1002", "1003", "BUSY", "00:00:00", "00:00:00"),
    ],
    "mikopbx-cdr-general.csv": [  # times with milliseconds
        ("2026-07-01 09:00:00", "0744000111", "201", "ANSWERED", "00:02:00", "00:02:06"),
        ("2026-07-01 09:00:00", "0744000111", "202", "NO ANSWER", "00:00:00", "00:00:06"),
        ("2026-07-01 10:00:00", "201", "0212345678", "ANSWERED", "00:05:00", "00:05:12"),
        ("2026-07-01 11:00:00", "202", "203", "BUSY", "00:00:00", "00:00:02"),
    ],
    "pbxware-cdr.csv": [
        ("2026-07-01 09:00:00", "0744000111", "1001", "ANSWERED", "00:02:00", "00:02:06"),
        ("2026-07-01 10:00:00", "1001", "0212345678", "ANSWERED", "00:05:00", "00:05:12"),
        ("2026-07-01 11:00:00", "1002", "1003", "BUSY", "00:00:00", "00:00:02"),
        ("2026-07-01 12:00:00", "1003", "0744000999", "FAILED", "00:00:00", "00:00:00"),
        ("2026-07-01 13:00:00", "0744000222", "1001", "NO ANSWER", "00:00:00", "00:00:30"),
    ],
    "freepbx-cdr-report.csv": [
        ("2026-07-01 09:00:00", "0744000111", "600", "ANSWERED", "00:02:00", "00:02:06"),
        ("2026-07-01 09:00:00", "0744000111", "600", "NO ANSWER", "00:00:00", "00:00:06"),
        ("2026-07-01 10:00:00", "1001", "0212345678", "ANSWERED", "00:05:00", "00:05:12"),
        ("2026-07-01 11:00:00", "1002", "1003", "BUSY", "00:00:00", "00:00:02"),
    ],
    "asteriskcdrdb-cdr.csv": [
        ("2026-07-01 09:00:00", "0744000111", "1001", "ANSWERED", "00:02:00", "00:02:06"),
        ("2026-07-01 09:00:00", "0744000111", "1002", "NO ANSWER", "00:00:00", "00:00:06"),
        ("2026-07-01 10:00:00", "1001", "0212345678", "ANSWERED", "00:05:00", "00:05:12"),
        ("2026-07-01 11:00:00", "1002", "1003", "BUSY", "00:00:00", "00:00:02"),
    ],
}


# file -> the first two calls are legs of one call (same linkedid), the third another
GROUPED = {
    "grandstream-ucm.csv": "1782896400.18",  # Session
    "yeastar-p-series.csv": "1783941300.45",  # ID
    "mikopbx-cdr-general.csv": "mikopbx-1782896400.18",
    "freepbx-cdr-report.csv": "1782896400.18",
    "asteriskcdrdb-cdr.csv": "1782896400.18",
}


def raw_cdrs(path: Path) -> list[dict[str, str]]:
    """The raw CDRs (CDR_FIELDS names -> values) the file's lines give."""
    lines = path.read_text().splitlines()
    parser = LineParser()
    assert parser.read_header(lines[0])
    found = []
    for fields in csv.reader(lines[1:]):
        cdr = parser.cdr(fields)
        assert not isinstance(cdr, str), cdr
        found.append({name: cdr[i] for name, i in CDR_INDEX.items()})
    return found


def test_every_vendor_fixture_is_covered() -> None:
    assert sorted(p.name for p in VENDORS.glob("*.csv")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vendor_export_every_line_stored_with_its_fields(store: Engine, name: str) -> None:
    reported: list[Reject] = []
    summary = ingest_csv(store, [VENDORS / name], IngestRun(rejects=None, report=reported.append))
    assert reported == [] and summary.rejected == 0
    found = records(store)
    got = [
        (r["time"], r["source"], r["destination"], r["call_status"], r["bill_duration"],
         r["duration"])
        for r in found
    ]  # fmt: skip
    assert got == EXPECTED[name]
    if name in GROUPED:
        first, second, third, *_ = found
        assert first["linkedid"] == second["linkedid"] == GROUPED[name]
        assert third["linkedid"] != first["linkedid"]


def test_grandstream_columns_reach_the_raw_cdr() -> None:
    inbound, leg, outbound, *_ = raw_cdrs(VENDORS / "grandstream-ucm.csv")
    assert (inbound["srctrunk"], inbound["dsttrunk"]) == ("Vodafone SIP", "")
    assert (outbound["srctrunk"], outbound["dsttrunk"]) == ("", "Vodafone SIP")
    assert inbound["calltype"] == "DIAL" and inbound["cnam"] == "Ion Pop"
    assert inbound["clid"] == '"Ion Pop" <0744000111>'
    assert inbound["lastdata"] == "PJSIP/1001,30" and inbound["dstchannel"] == "PJSIP/1001-00000013"
    assert (inbound["duration"], inbound["billsec"]) == ("0:02:06", "0:02:00")  # not the start
    assert inbound["linkedid"] == leg["linkedid"] == "1782896400.18"


def test_yeastar_p_series_columns_reach_the_raw_cdr() -> None:
    inbound, _, outbound, internal, voicemail = raw_cdrs(VENDORS / "yeastar-p-series.csv")
    assert (inbound["calltype"], inbound["srctrunk"], inbound["did"]) == (
        "Inbound", "Vodafone SIP", "0212345600",
    )  # fmt: skip
    assert (outbound["calltype"], outbound["dsttrunk"]) == ("Outbound", "Vodafone SIP")
    assert (outbound["src"], outbound["cnam"]) == ("1001", "Maria Ionescu")  # "Name<1001>"
    assert internal["calltype"] == "Internal" and internal["dst"] == "1003"
    assert voicemail["disposition"] == "NO ANSWER"  # VOICEMAIL: the callee did not answer


def test_yeastar_s_series_columns_reach_the_raw_cdr() -> None:
    s_inbound, s_outbound, *_ = raw_cdrs(VENDORS / "yeastar-s-series.csv")
    assert (s_inbound["srctrunk"], s_inbound["did"]) == ("GSM-Gateway", "0212345600")
    assert s_outbound["dsttrunk"] == "GSM-Gateway" and s_outbound["calltype"] == "Outbound"


def test_3cx_columns_reach_the_raw_cdr() -> None:
    inbound, outbound, internal, *_ = raw_cdrs(VENDORS / "3cx-call-log.csv")
    assert [c["calltype"] for c in (inbound, outbound, internal)] == [
        "Inbound", "Outbound", "Internal",
    ]  # fmt: skip
    assert (outbound["src"], outbound["cnam"]) == ("1001", "Maria Ionescu")


def test_mikopbx_columns_reach_the_raw_cdr() -> None:
    miko = raw_cdrs(VENDORS / "mikopbx-cdr-general.csv")[0]
    assert (miko["did"], miko["channel"]) == ("0212345600", "PJSIP/SIP-TRUNK-1A2B3C4D-00000012")
    assert miko["dialstatus"] == "ANSWER" and miko["recordingfile"].endswith(".mp3")


def test_freepbx_report_columns_reach_the_raw_cdr() -> None:
    freepbx = raw_cdrs(VENDORS / "freepbx-cdr-report.csv")[0]
    assert (freepbx["did"], freepbx["cnam"], freepbx["sequence"]) == ("0212345600", "Ion Pop", "12")
