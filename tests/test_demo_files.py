"""``cdrapi demo --write-files``: the demo PBX's files, read back by ``cdrapi ingest``.

The real test of the demo's files: a small seeded demo written with ``--write-files``,
then ``cdrapi ingest csv``, ``queue-log`` and ``cel`` on them into a fresh store, gives
the demo's own records, field by field, but what no file of the PBX holds.
"""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cdrapi.cli import main
from cdrapi.demo import _stream
from cdrapi.demo.files import FILES, PbxFiles
from cdrapi.demo.records import records

END = dt.date(2024, 3, 31)
DAYS = ["--days", "3", "--end", str(END), "--seed", "5"]

#: What the files do not hold, and what ingesting them gives instead.
#: - what no PBX log holds (the demo draws it): CRM ids, comments, costs, transcriptions;
NOT_LOGGED = ("customer_id", "external_id", "external_info", "accounting_value", "comments",
              "transcription_id", "transcription_text")  # fmt: skip
#: - the CDR variables a FreePBX site adds, not in cdr_csv's default layout: ``did``,
#:   ``recordingfile`` (the recording's path: recording_file, recording_url),
#:   ``dialstatus`` and ``hangupcause`` (call_status_info: the disposition's then);
NOT_IN_MASTER_CSV = ("did", "recording_file", "recording_url", "call_status_info")
#: - without ``did``, a leg whose ``dst`` is no DID (a transferred caller's second leg)
#:   has no inbound route, and its project is its agent's, not the route's;
FROM_DID = ("inbound_route_id", "inbound_route", "project_id", "project")
#: - and ingested calls have a source_key (demo calls have none: ingestion never matches them).
INGESTED = ("source_key",)


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def calls(path: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return {row["uniqueid"]: dict(row) for row in conn.execute("SELECT * FROM calls")}


@pytest.fixture(scope="module")
def demo_and_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("demo-files")
    output = run("demo", "--db", f"sqlite:///{root / 'demo.db'}", "--calls", "1500", *DAYS,
                 "--write-files", str(root / "pbx"))  # fmt: skip
    return root / "demo.db", root / "pbx", output


def test_ingesting_the_demo_files_gives_the_demo_records(
    demo_and_files: tuple[Path, Path, str], tmp_path: Path
) -> None:
    demo, pbx, output = demo_and_files
    store = f"sqlite:///{tmp_path / 'try.db'}"
    config = ["--config", str(pbx / "cdrapi.toml"), "--db", store]
    # the commands the demo tells a newcomer to try
    assert f"cdrapi ingest csv {pbx / 'Master.csv'} --config {pbx / 'cdrapi.toml'}" in output
    assert "1,500 calls stored, 0 already there, 0 rejected" in run(
        "ingest", "csv", str(pbx / "Master.csv"), *config
    )
    assert "0 rejected" in run("ingest", "queue-log", str(pbx / "queue_log"), *config)
    assert "0 rejected" in run("ingest", "cel", str(pbx / "cel.csv"), *config)

    made, ingested = calls(demo), calls(tmp_path / "try.db")
    assert ingested.keys() == made.keys() and len(made) == 1500
    differ = {
        field
        for uid, record in made.items()
        for field, value in record.items()
        if ingested[uid][field] != value
    }
    assert differ == {*NOT_LOGGED, *NOT_IN_MASTER_CSV, *FROM_DID, *INGESTED}
    # id (the order), times, people, direction, queue_log, CEL's IVR paths, transfers,
    # MixMonitor files and ring times, recovery: all the same; and the rest as said above
    for uid, record in made.items():
        got = ingested[uid]
        assert all(got[field] is None for field in (*NOT_LOGGED, "did", "recording_file",
                                                     "recording_url"))  # fmt: skip
        assert got["call_status_info"].startswith(f"DS:{got['call_status_info'][3:].split('|')[0]}")
        if record["did"] in (None, record["destination"]):
            assert all(got[field] == record[field] for field in FROM_DID), uid
        else:  # a transferred caller's leg to the second agent
            assert got["inbound_route_id"] is None and record["transfers"]
        assert got["source_key"] == f"u:{uid}:{record['sequence']}"
    filled = {"ivr_log", "transfers", "monitor_files", "queue_log", "is_recovered"}
    assert all(any(record[field] for record in made.values()) for field in filled)


def test_the_files_are_the_same_from_producer_processes(tmp_path: Path) -> None:
    """Big demos make their calls in producer processes (the first one writes the
    files): the same files, byte for byte, and the same records."""
    dates = [END - dt.timedelta(days=2 - i) for i in range(3)]
    here, there = tmp_path / "here", tmp_path / "there"
    made_here = list(records(5, 1200, dates, PbxFiles(here)))
    made_there = list(_stream(5, 1200, dates, True, PbxFiles(there)))
    assert made_there == made_here
    for name in FILES.values():
        assert (there / name).read_bytes() == (here / name).read_bytes(), name
    assert len((here / "Master.csv").read_text().splitlines()) == 1200


def test_the_files_are_in_time_order_as_asterisk_writes_them(
    demo_and_files: tuple[Path, Path, str],
) -> None:
    _, pbx, _ = demo_and_files
    with (pbx / "Master.csv").open(encoding="utf-8", newline="") as handle:
        cdrs = list(csv.reader(handle))
    assert {len(cdr) for cdr in cdrs} == {21}  # cdr_csv's default columns
    starts = [cdr[9] for cdr in cdrs]
    assert starts == sorted(starts) and len(starts) == 1500
    with (pbx / "cel.csv").open(encoding="utf-8", newline="") as handle:
        events = list(csv.reader(handle))
    assert {len(event) for event in events} == {19}  # the sample template, ${eventextra}
    times = [event[1] for event in events]
    assert times == sorted(times) and len(times) > 10_000
    lines = (pbx / "queue_log").read_text(encoding="utf-8").splitlines()
    logged = [int(line.split("|")[0]) for line in lines]
    assert logged == sorted(logged)
    assert any("|CONNECT|" in line for line in lines)
    # text quoted (quotes doubled), the numbers not, as cdr_csv writes them
    first = (pbx / "Master.csv").read_text(encoding="utf-8").splitlines()[0]
    name = cdrs[0][4].split('"')[1]  # the caller id: "Name" <number>
    assert f',{cdrs[0][12]},{cdrs[0][13]},"' in first and f',"""{name}"" <' in first


def test_write_files_where_no_directory_can_be_is_a_clear_error(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a directory")
    db = f"sqlite:///{tmp_path / 'd.db'}"
    args = ["demo", "--db", db, "--calls", "10", "--write-files", str(taken / "pbx")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output and "a-file" in result.output
