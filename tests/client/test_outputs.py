"""``pull`` into each output, read back and compared with what the API serves: JSONL as sent,
CSV with the 43-column header, Parquet with typed columns, SQLite and PostgreSQL tables
upserted by id; one-shot pulls replace a file whole or not at all, incremental ones add."""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text, update

from cdrapi.client import AuthenticationError, OutputError, ResponseError, pull
from cdrapi.client.outputs.parquet import ParquetOutput
from cdrapi.protocol.records import RECORD_KEYS
from cdrapi.store.engine import bump_version
from cdrapi.store.schema import calls
from tests.client.conftest import FAST, KEY, TOKEN, Server


def api_records(server: Server, **filters: Any) -> list[dict[str, Any]]:
    with server.client() as client:
        return list(client.iter_records(**filters))


def run(server: Server, output: str | Path, **options: Any) -> Any:
    options.setdefault("retry", FAST)
    return pull(server.url, TOKEN, output, api_key=KEY, **options)


def seconds(text: str) -> int:
    hours, minutes, secs = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + int(secs)


def typed(record: dict[str, Any]) -> dict[str, Any]:
    """What a typed output should hold for an API record (written independently)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or value == "":
            out[key] = None if key in ("id", "time", "time_end", "is_recovered") else value
            if key in ("inbound_route_id",):
                out[key] = None
        elif key in ("id", "inbound_route_id", "bill_minutes"):
            out[key] = int(value)
        elif key in ("time", "time_end"):
            out[key] = dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        elif key in ("bill_duration", "duration", "ivr_duration", "hold_time", "ring_time"):
            out[key] = seconds(value)
        elif key == "is_recovered":
            out[key] = value == "1"
        else:
            out[key] = value
    return out


def test_jsonl_holds_the_records_as_sent(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    result = run(server, out, filters={"direction": "IN"}, concurrency=3)
    expected = api_records(server, direction="IN")
    lines = out.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == expected
    assert all(list(orjson.loads(line)) == list(RECORD_KEYS) for line in lines)
    assert result.records == len(expected) and result.last_id == int(expected[-1]["id"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.jsonl"]  # no staging left


def test_csv_has_the_43_column_header_and_one_row_per_record(
    server: Server, tmp_path: Path
) -> None:
    out = tmp_path / "calls.csv"
    run(server, out, filters={"has_recording_file": True})
    with open(out, newline="", encoding="utf-8") as file:
        header, *rows = list(csv.reader(file))
    assert header == list(RECORD_KEYS) and len(header) == 43
    expected = api_records(server, has_recording_file=True)
    assert rows == [["" if v is None else str(v) for v in record.values()] for record in expected]


def test_parquet_has_typed_columns(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "calls.parquet"
    run(server, out)
    table = pq.read_table(out)
    schema = table.schema
    assert schema.names == list(RECORD_KEYS)
    assert schema.field("id").type == pa.int64() and not schema.field("id").nullable
    assert schema.field("time").type == pa.timestamp("ms")
    assert schema.field("duration").type == pa.duration("s")
    assert schema.field("bill_minutes").type == pa.int64()
    assert schema.field("inbound_route_id").type == pa.int64()
    assert schema.field("is_recovered").type == pa.bool_()
    assert schema.field("source").type == pa.string()
    rows = table.to_pylist()
    for row in rows:
        for key in ("bill_duration", "duration", "ivr_duration", "hold_time", "ring_time"):
            row[key] = int(row[key].total_seconds())
    assert rows == [typed(record) for record in api_records(server)]
    assert any(row["bill_duration"] == 90000 for row in rows)  # 25:00:00, past a day


def write_parquet(path: Path, records: list[dict[str, Any]]) -> pa.Table:
    sink = ParquetOutput(path)
    sink.open(append=False, resume=None, durable=False)
    try:
        sink.write(records)
        sink.publish(sink.prepare())
    finally:
        sink.close()
    return pq.read_table(path)


def test_parquet_takes_numbers_and_missing_keys_from_other_servers(
    server: Server, tmp_path: Path
) -> None:
    # Another /api/cdr server may send ids and durations-in-minutes as JSON numbers, or
    # leave out keys it does not have: the same typed columns, missing keys null.
    records = api_records(server)[:50]
    other = []
    for record in records:
        changed: dict[str, Any] = {**record, "id": int(record["id"])}
        del changed["comments"]
        other.append(changed)
    expected = write_parquet(tmp_path / "ours.parquet", records).to_pylist()
    for row in expected:
        row["comments"] = None
    assert write_parquet(tmp_path / "other.parquet", other).to_pylist() == expected


def test_parquet_refuses_a_value_of_the_wrong_kind(server: Server, tmp_path: Path) -> None:
    records = api_records(server)[:5]
    records[3] = {**records[3], "time": "yesterday"}
    with pytest.raises(ResponseError, match="field time has a value that is not a valid"):
        write_parquet(tmp_path / "calls.parquet", records)


@pytest.mark.parametrize("state", [None, "state.json"], ids=["one-shot", "resumable"])
def test_parquet_is_written_in_bounded_row_groups(
    server: Server, tmp_path: Path, state: str | None
) -> None:
    out = tmp_path / "calls.parquet"
    sink = ParquetOutput(out, row_group_rows=300)  # the default is 8,192
    run(server, sink, state=None if state is None else tmp_path / state, checkpoint_seconds=0)
    parquet = pq.ParquetFile(out)
    sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    assert sizes == [300, 300, 300, 100]
    assert parquet.read(columns=["id"]).column("id").to_pylist() == server.ids
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["calls.parquet", *([] if state is None else [state, state + ".lock"])]
    )


@pytest.mark.parametrize("format", ["jsonl", "csv", "parquet"])
def test_a_failed_one_shot_pull_leaves_the_file_as_it_was(
    server: Server, tmp_path: Path, format: str
) -> None:
    out = tmp_path / f"calls.{format}"
    run(server, out, filters={"direction": "OUT"})
    before = out.read_bytes()
    with pytest.raises(AuthenticationError):
        pull(server.url, "wrong-token", out, api_key=KEY, retry=FAST)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    run(server, out, filters={"direction": "IN"})  # a good pull replaces it whole
    assert out.read_bytes() != before


@pytest.mark.parametrize("format", ["jsonl", "csv", "parquet"])
def test_an_incremental_pull_adds_only_new_calls(
    fresh_server: Server, tmp_path: Path, format: str
) -> None:
    out, state = tmp_path / f"calls.{format}", tmp_path / "state.json"
    assert run(fresh_server, out, state=state).records == 300
    fresh_server.add_calls(120, seed=5)
    assert run(fresh_server, out, state=state).records == 120
    assert run(fresh_server, out, state=state).records == 0
    if format == "jsonl":
        ids = [int(orjson.loads(line)["id"]) for line in out.read_bytes().splitlines()]
    elif format == "csv":
        with open(out, newline="") as file:
            rows = list(csv.reader(file))
        assert rows[0] == list(RECORD_KEYS) and rows.count(rows[0]) == 1
        ids = [int(row[0]) for row in rows[1:]]
    else:
        ids = pq.read_table(out, columns=["id"]).column("id").to_pylist()
    assert ids == fresh_server.ids
    assert orjson.loads(state.read_bytes())["last_id"] == fresh_server.ids[-1]


def test_an_incremental_pull_will_not_add_to_a_file_it_did_not_write(
    server: Server, tmp_path: Path
) -> None:
    out = tmp_path / "calls.jsonl"
    run(server, out)  # one-shot: every call
    before = out.read_bytes()
    with pytest.raises(OutputError, match="could double records"):
        run(server, out, state=tmp_path / "new-state.json")
    assert out.read_bytes() == before


def test_unknown_outputs_are_refused(server: Server, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot tell the format"):
        run(server, tmp_path / "calls.xlsx")


def test_database_output_upserts_by_id(server: Server, db_url: str) -> None:
    # db_url: a fresh SQLite file or PostgreSQL database, the *output* here.
    result = run(server, db_url, filters={"call_status": ["ANSWERED", "BUSY"]})
    expected = api_records(server, call_status=["ANSWERED", "BUSY"])
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(text("SELECT * FROM calls ORDER BY id"))]
    if db_url.startswith("sqlite"):  # SQLite keeps times as the API's text, booleans as 0/1
        for row in rows:
            for key in ("time", "time_end"):
                row[key] = dt.datetime.strptime(row[key], "%Y-%m-%d %H:%M:%S")
            row["is_recovered"] = None if row["is_recovered"] is None else bool(row["is_recovered"])
    assert result.records == len(rows) == len(expected)
    assert rows == [typed(record) for record in expected]

    # The server's copy changes; pulling again (all calls, overlapping) updates in place.
    with server.engine.begin() as conn:
        conn.execute(
            update(calls).where(calls.c.id == rows[0]["id"]).values(comments="called back")
        )
        bump_version(conn)
    try:
        run(server, db_url, table="calls")
    finally:
        with server.engine.begin() as conn:
            conn.execute(update(calls).where(calls.c.id == rows[0]["id"]).values(comments=None))
            bump_version(conn)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*), count(DISTINCT id) FROM calls")).one()
        comment = conn.execute(
            text("SELECT comments FROM calls WHERE id = :id"), {"id": rows[0]["id"]}
        ).scalar_one()
    assert tuple(count) == (len(server.rows), len(server.rows))
    assert comment == "called back"
    engine.dispose()


def test_a_database_password_is_never_shown(server: Server, postgres: Any) -> None:
    url = postgres.url().replace("postgres@", "postgres:s3cret@")
    result = run(server, url, filters={"uniqueid": "1704067200.5"})
    assert result.records == 1
    assert "s3cret" not in result.target and result.target.startswith("postgresql://postgres:***@")
    with pytest.raises(OutputError) as caught:
        run(server, url.rsplit("/", 1)[0] + "/no_such_database")
    assert "s3cret" not in str(caught.value)


def test_database_output_into_another_table_with_state(
    fresh_server: Server, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'warehouse.db'}"
    state = tmp_path / "state.json"
    run(fresh_server, target, table="pbx_calls", state=state)
    fresh_server.add_calls(50, seed=8)
    assert run(fresh_server, target, table="pbx_calls", state=state).records == 50
    engine = create_engine(target)
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM pbx_calls ORDER BY id")).scalars().all()
        time_text = conn.execute(text("SELECT time FROM pbx_calls LIMIT 1")).scalar_one()
    assert ids == fresh_server.ids
    assert len(time_text) == 19  # 'YYYY-MM-DD HH:MM:SS', as the API writes it
    engine.dispose()
    assert os.path.exists(state)
