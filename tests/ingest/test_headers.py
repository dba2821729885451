"""Header CSV exports (:mod:`cdrapi.ingest.headers`): a first row of column names read as
the raw CDR's fields (FreePBX's, common aliases, underscores), unquoted NULLs empty, two
columns for one field an error, the day/month order of slashed dates taken from the file.
Each vendor's own format is tests/ingest/test_vendors.py's."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdrapi.ingest import LayoutError, ingest_csv
from cdrapi.ingest.files import CHUNK
from tests.ingest.conftest import FIXTURES, records, rows

VENDORS = Path(__file__).parents[1] / "fixtures" / "vendors"


def test_unquoted_null_is_empty_and_quoted_null_is_text(store: Engine) -> None:
    ingest_csv(store, [VENDORS / "pbxware-cdr.csv"])
    stored = rows(store, "dstchannel", "userfield", "accounting_code")
    assert stored[2] == ("", "NULL", None)  # dstchannel NULL; userfield "NULL" (quoted)
    assert stored[3] == ("", None, None)  # \N
    assert stored[0] == ("SIP/1001-00000013", None, None)
    ingest_csv(store, [VENDORS / "asteriskcdrdb-cdr.csv"])
    assert rows(store, "dstchannel")[-1] == ("",)


def test_two_columns_for_one_field_is_an_error_naming_both(store: Engine, tmp_path: Path) -> None:
    both = tmp_path / "export.csv"
    both.write_text(
        "Start Time,Caller Number,Source,Callee Number,Disposition,Duration,Talk Duration\n"
        "2026-07-01 09:00:00,0744000111,0744000111,1001,ANSWERED,30,25\n"
    )
    with pytest.raises(LayoutError, match="'Caller Number' and 'Source' both hold src"):
        ingest_csv(store, [both])
    assert rows(store) == []
    ingest_csv(store, [both], columns="Source=")  # ignored: no more doubt
    assert rows(store, "source", "billsec") == [("0744000111", 25)]


def test_header_names_with_underscores_match(store: Engine, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "start_stamp,caller_id_number,caller_id_name,destination_number,duration,billsec,"
        "disposition,hangup_cause\n2026-07-01 09:00:00,0744000111,Ion Pop,1001,30,25,"
        "ANSWERED,16\n"
    )
    summary = ingest_csv(store, [export])
    assert (summary.stored, summary.rejected) == (1, 0)
    (call,) = records(store)
    assert (call["source"], call["destination"]) == ("0744000111", "1001")
    assert call["caller_id"] == '"Ion Pop" <0744000111>'


def test_slashed_dates_without_a_day_over_12_are_read_month_first_and_warned(
    store: Engine, tmp_path: Path
) -> None:
    export = tmp_path / "cdr.csv"
    export.write_text(
        "Time,Call From,Call To,Call Duration(s),Talk Duration(s),Status,Communication Type\n"
        "07/01/2026 09:00:00,1001,1002,10,5,ANSWERED,Internal\n"
        "07/02/2026 09:00:00,1001,1002,10,5,ANSWERED,Internal\n"
    )
    summary = ingest_csv(store, [export])
    assert [r["time"] for r in records(store)] == ["2026-07-01 09:00:00", "2026-07-02 09:00:00"]
    assert any("read month first" in w and ":2:" in w for w in summary.warnings)


def test_the_day_month_order_of_a_big_file_is_one_for_all_its_lines(
    store: Engine, tmp_path: Path
) -> None:
    """Days 01-12 fill the first chunk read; day 14 comes later: every line is day first."""
    export = tmp_path / "cdr.csv"
    lines = ["Time,Call From,Call To,Call Duration(s),Talk Duration(s),Status,Communication Type"]
    for n in range(12_000):
        day = 1 + n // 1000  # 01/07 .. 12/07, a thousand calls a day
        when = f"{day:02d}/07/2026 09:{n // 60 % 60:02d}:{n % 60:02d}"
        lines.append(f"{when},1001,1002,10,5,ANSWERED,Internal")
    lines.append("14/07/2026 09:00:00,1001,1002,10,5,ANSWERED,Internal")
    export.write_text("\n".join(lines) + "\n")
    assert export.stat().st_size > CHUNK // 16  # more than the first chunk of a one-shot run
    summary = ingest_csv(store, [export])
    assert (summary.stored, summary.rejected) == (12_001, 0)
    months = {r["time"][5:7] for r in records(store)}
    assert months == {"07"}
    assert not any("month first" in w for w in summary.warnings)


def test_header_exports_freepbx_and_vendor_names(store: Engine) -> None:
    summary = ingest_csv(store, [FIXTURES / "freepbx-export.csv", FIXTURES / "vendor-export.csv"])
    assert (summary.stored, summary.rejected) == (4, 0)
    freepbx, internal, vendor, busy = records(store)
    assert freepbx["uniqueid"] == "1710403200.500" and freepbx["time"] == "2024-03-14 10:00:00"
    assert freepbx["time_end"] == "2024-03-14 10:00:25"  # calldate + duration
    assert internal["direction"] == "INTERNAL" and internal["call_status"] == "NO ANSWER"
    assert vendor["caller_id"] == '"Ana Maria" <0744000111>'
    assert vendor["source"] == "0744000111" and vendor["destination"] == "0312285000"
    assert vendor["uniqueid"] == "1710482400.600" and vendor["direction"] == "IN"
    assert busy["call_status"] == "BUSY" and busy["dstchannel_formatted"] == ""
