"""Asterisk CSV files into the store (:mod:`cdrapi.ingest.csvfile`): every line one
record, once; bad lines rejected with file and line while the import goes on; big files
in order; line ends, a byte order mark, a header row and broken caller ids handled."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Engine

from cdrapi.ingest import IngestRun, Reject, ingest_csv
from cdrapi.settings import Settings
from tests.ingest.conftest import FIXTURES, cdr_line, records, rows

REAL_21 = FIXTURES / "cdr_csv-21col-Master.csv"


def test_real_cdr_csv_file_every_line_one_record(store: Engine) -> None:
    summary = ingest_csv(store, [REAL_21])
    assert (summary.lines, summary.stored, summary.rejected) == (84, 84, 0)
    first, *_ = found = records(store)
    assert len(found) == 84 and len(first) == 43
    assert first["uniqueid"] == first["linkedid"] == "1706368044.0"
    assert first["time"] == "2024-01-27 15:07:24" and first["time_end"] == "2024-01-27 15:07:51"
    assert first["caller_id"] == '"90893692218" <90893692218>'
    assert first["channel_formatted"] == "SIP/902320" and first["dstchannel_formatted"] == ""
    assert first["direction"] == "IN" and first["code"] == "inbound"  # context stadion-pstn
    assert first["call_status"] == "ANSWERED" and first["bill_duration"] == "00:00:27"
    assert first["bill_minutes"] == 1 and first["duration"] == "00:00:27"
    assert first["call_status_info"] == "DS:ANSWER|HC:16|HI:Normal Clearing"


def test_the_unanswered_leg_of_a_ring_group(store: Engine) -> None:
    """Its answer time a bare empty field; its direction and codes its call's."""
    ingest_csv(store, [REAL_21])
    leg = next(r for r in records(store) if r["uniqueid"] == "1706372196.14")
    assert leg["call_status"] == "NO ANSWER" and leg["ring_time"] == "00:00:15"
    assert leg["channel_formatted"] == "Local/ch1@TimeDelay" and leg["linkedid"] == "1706372196.12"
    assert leg["call_codes"] == "in no answer" and leg["direction"] == "IN"  # its call's


def test_a_systemname_prefixed_uniqueid(store: Engine) -> None:
    ingest_csv(store, [REAL_21])
    assert any(r["uniqueid"] == "mainserverdss-1706420300.0" for r in records(store))


def test_gmt_times_are_converted_to_the_pbx_zone(store: Engine) -> None:
    options = IngestRun(Settings(timezone="Europe/Bucharest"))
    ingest_csv(store, [FIXTURES / "cdr_csv-18col-Master.csv"], options, gmt=True)
    assert records(store)[0]["time"] == "2024-03-14 11:28:44"  # UTC+2 in March


def test_bad_lines_are_rejected_with_file_and_line_and_the_import_goes_on(
    store: Engine, tmp_path: Path
) -> None:
    good = REAL_21.read_bytes().splitlines(keepends=True)
    bad_lines = [
        b'"","1","2","ctx","x","SIP/a-1","","Dial","","not a date",,"2024-01-01 00:00:00",1,1\n',
        b'"unterminated,"quote\n',
        b'"","1","2","c","x","SIP/a-1","","Dial","","2024-01-27 15:07:24",,'
        b'"2024-01-27 15:07:51",27,27,"MAYBE","DOCUMENTATION","1.1","","","1.1",0\n',
        b"\x00\x01binary junk\n",
    ]
    mixed = tmp_path / "Master.csv"
    mixed.write_bytes(b"".join([good[0], bad_lines[0], good[1], bad_lines[1], good[2],
                                bad_lines[2], bad_lines[3], good[3]]))  # fmt: skip
    reported: list[Reject] = []
    reject_file = tmp_path / "rejects.txt"
    summary = ingest_csv(store, [mixed], IngestRun(rejects=reject_file, report=reported.append))
    assert (summary.stored, summary.rejected, summary.lines) == (4, 4, 8)
    assert [(r.file, r.line) for r in reported] == [(str(mixed), n) for n in (2, 4, 6, 7)]
    assert "columns" in reported[0].reason or "time" in reported[0].reason
    assert "unknown disposition 'MAYBE'" in reported[2].reason
    assert str(reported[2]).startswith(f"{mixed}:6: ")
    assert reject_file.read_bytes() == b"".join(bad_lines)  # as they were, to fix and re-import
    assert len(rows(store, "id")) == 4


def test_a_big_file_keeps_every_line_in_order(store: Engine, tmp_path: Path) -> None:
    """A file of over 8 MB is parsed in a second process while earlier batches are
    written: still every good line once, in file order, findable by number at once, and
    the bad lines reported by their line numbers."""
    lines = [cdr_line(n, src=f"07{n:08d}") for n in range(45_000)]
    lines[20_000] = "not,a,call\n"
    lines[44_000] = lines[44_000].replace("ANSWERED", "MAYBE")
    master = tmp_path / "Master.csv"
    master.write_text("".join(lines))
    assert master.stat().st_size > 8 << 20
    reported: list[Reject] = []
    summary = ingest_csv(store, [master], IngestRun(report=reported.append))
    assert (summary.lines, summary.stored, summary.rejected) == (45_000, 44_998, 2)
    assert [(r.line, "MAYBE" in r.reason) for r in reported] == [(20_001, False), (44_001, True)]
    kept = [n for n in range(45_000) if n not in (20_000, 44_000)]
    assert rows(store, "id", "uniqueid") == [(i, f"1710000000.{n}") for i, n in enumerate(kept, 1)]
    with store.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT rowid FROM calls_numbers WHERE calls_numbers MATCH '\"0700030000\"'"
        ).all()
    assert found == [(30_000,)]  # line 30,001, the 30,000th call stored


def test_the_same_lines_twice_stay_one_record(store: Engine, tmp_path: Path) -> None:
    copy = tmp_path / "Master.csv"
    shutil.copy(REAL_21, copy)
    ingest_csv(store, [copy])
    assert ingest_csv(store, [copy]).lines == 0  # resumed after the checkpoint: nothing new
    again = ingest_csv(store, [copy], IngestRun(from_start=True))
    assert (again.lines, again.stored, again.duplicates) == (84, 0, 84)
    other = tmp_path / "copy-of-Master.csv"  # the same CDRs under another name
    shutil.copy(REAL_21, other)
    assert ingest_csv(store, [other]).stored == 0
    legacy = tmp_path / "16.csv"  # no uniqueid: the line itself is the key
    shutil.copy(FIXTURES / "cdr_csv-16col-Master.csv", legacy)
    assert ingest_csv(store, [legacy]).stored == 2
    assert ingest_csv(store, [legacy], IngestRun(from_start=True)).stored == 0
    assert len(rows(store, "id")) == 86


def test_last_line_without_newline_and_crlf(store: Engine, tmp_path: Path) -> None:
    data = REAL_21.read_bytes().splitlines()[:3]
    path = tmp_path / "Master.csv"
    path.write_bytes(b"\r\n".join(data))  # CRLF, and no newline at the end
    summary = ingest_csv(store, [path])  # the last line may be half-written: left for later
    assert (summary.stored, summary.rejected, summary.left) == (2, 0, 1)
    with path.open("ab") as out:
        out.write(b"\r\n")
    assert ingest_csv(store, [path]).stored == 1
    assert rows(store, "sequence") == [(0,), (1,), (2,)]


def test_a_byte_order_mark_is_not_part_of_the_first_field(store: Engine, tmp_path: Path) -> None:
    bare = tmp_path / "Master.csv"  # headerless: the mark leaked into accountcode
    bare.write_bytes(b"\xef\xbb\xbf" + b"".join(REAL_21.read_bytes().splitlines(True)[:2]))
    header = tmp_path / "export.csv"
    header.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "vendor-export.csv").read_bytes())
    # Windows-1252 on the second line: a chunk that is no UTF-8 (decoded line by line)
    first, second = REAL_21.read_bytes().splitlines(True)[2:4]
    named = second.replace(b'"""90893692218"" <', b'"""Mar\xeda"" <')
    dirty = tmp_path / "Master-1252.csv"
    dirty.write_bytes(b"\xef\xbb\xbf" + first + named)
    summary = ingest_csv(store, [bare, header, dirty])
    assert (summary.stored, summary.rejected) == (6, 0)
    found = records(store)
    assert [r["accounting_code"] for r in (*found[:2], *found[4:])] == [None] * 4
    assert found[0]["uniqueid"] == "1706368044.0"
    assert found[2]["time"] == "2024-03-15 08:00:00"
    assert found[5]["caller_id"] == '"Mar\xeda" <90893692218>'


def test_broken_quoting_in_a_caller_id_is_stored_and_warned(store: Engine, tmp_path: Path) -> None:
    good = REAL_21.read_bytes().splitlines(keepends=True)
    broken = good[1].replace(b'"""90893692218"" <90893692218>"', b'"""Maria <101>"')
    stray = good[2].replace(b'"""90893692218"" <90893692218>"', b'"""Jo""e"" <102>"')
    master = tmp_path / "Master.csv"
    master.write_bytes(good[0] + broken + stray + good[3])
    reported: list[Reject] = []
    summary = ingest_csv(store, [master], IngestRun(report=reported.append))
    assert (summary.stored, summary.rejected, reported) == (4, 0, [])
    assert [r["caller_id"] for r in records(store)[1:3]] == ['"Maria <101>', '"Jo"e" <102>']
    assert len(summary.warnings) == 2
    assert summary.warnings[0].startswith(f"{master}:2: caller id '\"Maria <101>'")
    assert "quotes do not pair" in summary.warnings[1] and f"{master}:3:" in summary.warnings[1]


def test_a_header_row_is_not_counted_as_a_line(store: Engine, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "calldate,src,dst,disposition,duration,billsec,uniqueid\n"
        "2024-03-09 17:00:00,0721000001,101,ANSWERED,5,5,1710000000.1\n"
        "2024-03-09 17:01:00,0721000002,101,NO ANSWER,5,0,1710000000.2\n"
    )
    summary = ingest_csv(store, [export])
    assert (summary.lines, summary.stored, summary.rejected) == (2, 2, 0)
