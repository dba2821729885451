"""Which layout a CSV line has (cdr_csv in each column count, cdr_custom, ``--columns``)
and its fields decoded (:mod:`cdrapi.ingest.layouts`), seen in the records stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdrapi.ingest import LayoutError, ingest_csv
from tests.ingest.conftest import FIXTURES, records

REAL_21 = FIXTURES / "cdr_csv-21col-Master.csv"
REAL_CUSTOM = FIXTURES / "cdr_custom-Master.csv"


def test_non_utf8_caller_names_stay_readable(store: Engine) -> None:
    ingest_csv(store, [REAL_21])
    names = [r["caller_id"] for r in records(store) if r["source"] == "99074952934438"]
    assert names == ['"9333933084¥¥b" <99074952934438>'] * 2  # bytes A5 A5 read as cp1252


def test_real_cdr_custom_file(store: Engine) -> None:
    summary = ingest_csv(store, [REAL_CUSTOM])
    assert (summary.stored, summary.rejected) == (14, 0)  # its blank first line is no call
    first = records(store)[0]
    assert first["caller_id"] == '"" <client1>' and first["source"] == "client1"
    assert first["destination"] == "6789" and first["uniqueid"] == "1690325492.2"
    assert first["time"] == "2023-07-26 01:51:32" and first["bill_duration"] == "00:00:13"
    missed = records(store)[1]
    assert missed["call_status"] == "NO ANSWER" and missed["ring_time"] == "00:00:30"


@pytest.mark.parametrize("columns", [16, 17, 18, 19, 20])
def test_every_cdr_csv_column_layout(store: Engine, columns: int) -> None:
    ingest_csv(store, [FIXTURES / f"cdr_csv-{columns}col-Master.csv"])
    inbound, outbound = records(store)
    assert inbound["source"] == "0721555001" and inbound["destination"] == "0312285000"
    assert inbound["caller_id"] == '"Ion Pop" <0721555001>'
    assert inbound["time"] == "2024-03-14 09:28:44" and inbound["bill_duration"] == "00:02:20"
    assert inbound["direction"] == "IN" and outbound["direction"] == "OUT"
    assert outbound["call_status"] == "NO ANSWER" and outbound["user_fullname"] == "Maria Ionescu"
    has_uid = columns in (17, 18, 20)  # 19: newcdrcolumns without loguniqueid
    assert (inbound["uniqueid"] == "1710401324.480") is has_uid
    if columns in (19, 20):
        assert outbound["linkedid"] == "1710401700.485"


def test_columns_option_renames_or_lays_out(store: Engine, tmp_path: Path) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text(
        "Ora,De la,Catre,Stare,Durata,Taxabil\n2024-05-01 12:00:00,0721000001,101,ANSWERED,30,25\n"
    )
    ingest_csv(store, [odd], columns="Ora=start,De la=src,Catre=dst,Stare=disposition,"
               "Durata=duration,Taxabil=billsec")  # fmt: skip
    bare = tmp_path / "bare.csv"
    bare.write_text('"0721000002","102","2024-05-01 13:00:00","BUSY",3,0\n')
    ingest_csv(store, [bare], columns="src,dst,start,disposition,duration,billsec")
    first, second = records(store)
    assert (first["source"], first["time"], first["bill_duration"]) == (
        "0721000001", "2024-05-01 12:00:00", "00:00:25",
    )  # fmt: skip
    assert (second["destination"], second["call_status"]) == ("102", "BUSY")
    with pytest.raises(LayoutError, match="unknown field"):
        ingest_csv(store, [bare], columns="src,nonsense,start")
