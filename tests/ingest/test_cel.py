"""cel_custom CSV files give a call's records the fields a person reads in its events
(IVR path, transfers, MixMonitor files, ring times, the call's end), whichever of the
CEL and the CDR comes first; with the guarantees of the CDR files."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from cdrapi.cli.ingest import ingest
from cdrapi.ingest import IngestRun, LayoutError, Reject, ingest_csv
from cdrapi.ingest.cel_events import DEFAULT_LAYOUT
from cdrapi.ingest.cel_file import ingest_cel
from cdrapi.ingest.directory import directory_from
from cdrapi.protocol.records import RECORD_COLUMNS, record
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from cdrapi.store.schema import cel_calls
from cdrapi.store.writer import Writer
from tests.ingest.conftest import compress, rows, wait_for

CEL = Path(__file__).parents[1] / "fixtures" / "cel"
MASTER, CDRS = CEL / "Master.csv", CEL / "cdr.csv"
DIRECTORY = directory_from({"users": [
    {"extension": ext, "fullname": name, "channel_pattern": f"PJSIP/{ext}"}
    for ext, name in (("101", "Ana Pop"), ("102", "Dan Ionescu"), ("103", "Maria Stan"))
]})  # fmt: skip
SETTINGS = Settings.model_validate({
    "timezone": "Europe/Bucharest", "recordings_dir": "/var/spool/asterisk/monitor",
    "public_url": "https://pbx.example.ro",
})  # fmt: skip
DEFAULT = DEFAULT_LAYOUT  # the columns of Master.csv: the template's, then ${eventextra}
FIELDS = ("ivr_log", "ivr_duration", "transfers", "monitor_files", "monitor_urls", "ring_time")
M1 = "2024/03/14/in-101-0721555005-20240314-104000-1710405600.14.wav"
M2 = "2024/03/14/in-102-0721555005-20240314-104100-1710405660.16.wav"
URL = "https://pbx.example.ro/recordings/"

#: What a person reads in the events of Master.csv, leg by leg (uniqueid, dstchannel).
EXPECTED: dict[tuple[str, str], dict[str, Any]] = {
    # 2 menus, keys 1 then 2, into the queue; 101 rang 8 s, then 102 (blind) 6 s
    ("1710403200.1", "PJSIP/101-00000002"): {
        "ivr_log": "ivr-main > 1 ivr-support > 2 queue support", "ivr_duration": "00:00:11",
        "transfers": "blind Ana Pop (101) -> Dan Ionescu (102) at 10:01:20",
        "monitor_files": None, "monitor_urls": None, "ring_time": "00:00:08"},
    ("1710403200.1", "PJSIP/102-00000003"): {
        "ivr_log": "ivr-main > 1 ivr-support > 2 queue support", "ivr_duration": "00:00:11",
        "transfers": "blind Ana Pop (101) -> Dan Ionescu (102) at 10:01:20",
        "monitor_files": None, "monitor_urls": None, "ring_time": "00:00:06"},
    ("1710403800.4", "PJSIP/101-00000005"): {
        "ivr_log": None, "ivr_duration": "00:00:00",
        "transfers": "attended Ana Pop (101) -> Maria Stan (103) at 10:11:00",
        "monitor_files": None, "monitor_urls": None, "ring_time": "00:00:05"},
    ("1710403830.6", "PJSIP/103-00000007"): {  # the consultation call: 103 rang 4 s
        "ivr_log": None, "ivr_duration": "00:00:00", "transfers": None,
        "monitor_files": None, "monitor_urls": None, "ring_time": "00:00:04"},
    ("1710404400.8", "PJSIP/102-00000009"): {
        "ivr_log": None, "ivr_duration": "00:00:00",
        "transfers": "pickup Dan Ionescu (102) -> Maria Stan (103) at 10:20:07",
        "monitor_files": None, "monitor_urls": None, "ring_time": "00:00:06"},
    ("1710405000.11", "PJSIP/103-0000000d"): {
        "ivr_log": None, "ivr_duration": "00:00:00",
        "transfers": "forward Dan Ionescu (102) -> Maria Stan (103) at 10:30:03",
        "monitor_files": None, "monitor_urls": None, "ring_time": "00:00:09"},
    ("1710405600.14", "PJSIP/101-0000000f"): {
        "ivr_log": None, "ivr_duration": "00:00:00",
        "transfers": "blind Ana Pop (101) -> Dan Ionescu (102) at 10:41:00",
        "monitor_files": f"{M1}; {M2}", "monitor_urls": f"{URL}{M1}; {URL}{M2}",
        "ring_time": "00:00:04"},
    ("1710405600.14", "PJSIP/102-00000010"): {
        "ivr_log": None, "ivr_duration": "00:00:00",
        "transfers": "blind Ana Pop (101) -> Dan Ionescu (102) at 10:41:00",
        "monitor_files": f"{M1}; {M2}", "monitor_urls": f"{URL}{M1}; {URL}{M2}",
        "ring_time": "00:00:03"},
    ("1710406200.17", "PJSIP/101-00000012"): {  # abandoned: 101 rang 15 s unanswered
        "ivr_log": None, "ivr_duration": "00:00:00", "transfers": None,
        "monitor_files": None, "monitor_urls": None, "ring_time": "00:00:15"},
}  # fmt: skip

ENDED = {"1710403200.1": "2024-03-14 10:02:26", "1710406200.17": "2024-03-14 10:50:20",
         "1710405600.14": "2024-03-14 10:41:40"}  # fmt: skip


def _run(**kw: Any) -> IngestRun:
    return IngestRun(SETTINGS, DIRECTORY, rejects=None, **kw)


def derived(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    """The CEL fields of each stored leg, as the API writes them."""
    found = {}
    for row in rows(engine, *RECORD_COLUMNS, "dstchannel"):
        rec = record(row[:-1])
        found[(rec["uniqueid"], row[-1])] = {key: rec[key] for key in FIELDS}
    return found


def _check(engine: Engine) -> None:
    assert derived(engine) == EXPECTED
    store = Writer(engine, {})
    for linkedid, when in ENDED.items():
        assert store.call_ended(linkedid) == when


def test_cel_first_then_cdrs(store: Engine) -> None:
    summary = ingest_cel(store, [MASTER], _run())
    assert (summary.lines, summary.rejected) == (117, 0)
    ingest_csv(store, [CDRS], _run())
    _check(store)


def test_cdrs_first_then_cel(store: Engine) -> None:
    ingest_csv(store, [CDRS], _run())
    summary = ingest_cel(store, [MASTER], _run())
    assert summary.updated == len(EXPECTED) - 1  # the consultation leg's CDR said 4 s too
    _check(store)


def test_half_of_the_cel_before_the_cdrs_the_rest_after(store: Engine, tmp_path: Path) -> None:
    lines = MASTER.read_bytes().splitlines(keepends=True)
    part = tmp_path / "Master.csv"
    part.write_bytes(b"".join(lines[:40]))
    ingest_cel(store, [part], _run())
    ingest_csv(store, [CDRS], _run())
    part.write_bytes(b"".join(lines))  # Asterisk appended the rest
    ingest_cel(store, [part], _run())
    _check(store)


def test_read_again_nothing_doubles(store: Engine) -> None:
    ingest_csv(store, [CDRS], _run())
    ingest_cel(store, [MASTER], _run())
    again = ingest_cel(store, [MASTER], _run(from_start=True))
    assert (again.lines, again.duplicates, again.updated) == (117, 117, 0)
    with store.connect() as conn:
        events = [len(r.events.split("\x1e")) for r in conn.execute(select(cel_calls))]
    assert sum(events) == 117  # every line once
    assert derived(store) == EXPECTED


def test_a_cron_run_during_a_half_written_line_leaves_it_for_the_next(
    store: Engine, tmp_path: Path
) -> None:
    data = MASTER.read_bytes()
    cut = data.index(b"\n", len(data) // 2) + 30  # 30 bytes into the next event's line
    live = tmp_path / "Master.csv"
    live.write_bytes(data[:cut])  # Asterisk is writing that line when cron runs
    first = ingest_cel(store, [live], _run())
    assert (first.rejected, first.left) == (0, 1)
    live.write_bytes(data)  # the line finished, and the rest of the day
    second = ingest_cel(store, [live], _run())
    assert (second.rejected, first.lines + second.lines) == (0, 117)
    with store.connect() as conn:
        events = [len(r.events.split("\x1e")) for r in conn.execute(select(cel_calls))]
    assert sum(events) == 117  # every line once, the cut one too
    ingest_csv(store, [CDRS], _run())
    _check(store)


def test_rotated_and_compressed_file_is_finished(store: Engine, tmp_path: Path) -> None:
    lines = MASTER.read_bytes().splitlines(keepends=True)
    live = tmp_path / "Master.csv"
    live.write_bytes(b"".join(lines[:60]))
    ingest_cel(store, [live], _run())
    live.write_bytes(b"".join(lines))  # more events, then logrotate: compressed, new file
    compress(live, tmp_path / "Master.csv.1.gz")
    live.write_bytes(b"")
    second = ingest_cel(store, [live], _run())
    assert (second.lines, second.rejected) == (57, 0)
    ingest_csv(store, [CDRS], _run())
    _check(store)


def test_bad_lines_rejected_with_file_and_line(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    good = MASTER.read_text().splitlines()
    late = good[2].replace('"1710403201.000000"', '"soon"')
    path.write_text(
        "\n".join([good[0], '"CHAN_START","yesterday"', good[1], late, *good[3:]]) + "\n"
    )
    seen: list[Reject] = []
    summary = ingest_cel(store, [path], IngestRun(SETTINGS, DIRECTORY, rejects=tmp_path / "r.txt",
                                                  report=seen.append))  # fmt: skip
    assert [(r.line, r.reason.split(":")[0]) for r in seen] == [
        (2, "expected 18 columns (cel_custom.conf's template) or a header row, got 2"),
        (4, "bad eventtime 'soon'"),
    ]
    assert str(seen[0]).startswith(f"{path}:2: ")
    assert summary.rejected == 2 and summary.lines == 118
    assert (tmp_path / "r.txt").read_text().count("\n") == 2


def test_header_row_and_columns_layouts(store: Engine, tmp_path: Path) -> None:
    lines = MASTER.read_text().splitlines()
    names = (
        "eventtype,eventtime,cid_name,cid_num,cid_ani,cid_rdnis,cid_dnid,exten,context,"
        "channame,appname,appdata,amaflags,accountcode,uniqueid,linkedid,peer,userfield,extra"
    )
    headed = tmp_path / "export.csv"
    headed.write_text("\n".join([names, *lines]) + "\n")
    assert ingest_cel(store, [headed], _run()).lines == 117  # the header is no line
    other = connect(f"sqlite:///{tmp_path / 'other.db'}")
    moved = tmp_path / "custom.csv"  # a template with the linkedid first
    cut = [line.split('","') for line in lines]
    first = ['"' + '","'.join([c[15], c[0].strip('"'), *c[1:15], *c[16:]]) for c in cut]
    moved.write_text("\n".join(first) + "\n")
    layout = "linkedid," + names.replace(",linkedid", "")
    ingest_cel(other, [moved], _run(), columns=layout)
    ingest_csv(other, [CDRS], _run())
    _check(other)
    with pytest.raises(LayoutError, match="not CEL columns: caller"):
        ingest_cel(store, [moved], _run(), columns="caller,eventtime")


def test_numeric_event_types_are_cel_h_names(store: Engine, tmp_path: Path) -> None:
    numbers = {"CHAN_START": 1, "CHAN_END": 2, "HANGUP": 3, "ANSWER": 4, "APP_START": 5,
               "APP_END": 6, "BRIDGE_ENTER": 7, "BRIDGE_EXIT": 8, "BLINDTRANSFER": 11,
               "ATTENDEDTRANSFER": 12, "LINKEDID_END": 14, "PICKUP": 15, "FORWARD": 16}  # fmt: skip
    path = tmp_path / "Master.csv"
    out = []
    for line in MASTER.read_text().splitlines():
        kind, rest = line.split(",", 1)
        out.append(f'"{numbers[kind.strip(chr(34))]}",{rest}')
    path.write_text("\n".join(out) + "\n")
    ingest_cel(store, [path], _run())
    ingest_csv(store, [CDRS], _run())
    _check(store)


def test_cli_summary_line_and_exit_status(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    bad = tmp_path / "bad.csv"
    bad.write_text('"CHAN_START","x"\n')
    runner = CliRunner()
    result = runner.invoke(ingest, ["cel", str(MASTER), "--db", db])
    assert result.exit_code == 0, result.output
    last = result.output.splitlines()[-1]
    assert last.startswith("117 lines: 0 calls stored, 0 already there, 0 rejected"), last
    result = runner.invoke(ingest, ["cel", str(bad), "--db", db, "--rejects", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert f"rejected {bad}:1: expected 18 columns" in result.output
    assert "none of the 1 lines could be stored" in result.output
    result = runner.invoke(ingest, ["cel", str(MASTER), "sqlite:///x.db", "--db", db])
    assert result.exit_code == 2 and "one database URL" in result.output
    result = runner.invoke(ingest, ["cel", str(tmp_path / "none.csv"), "--db", db])
    assert result.exit_code == 1 and "no such file" in result.output
    assert "Traceback" not in result.output


def _events(db: Path) -> list[Any]:
    with sqlite3.connect(db, timeout=10) as conn:
        found = conn.execute("SELECT events FROM cel_calls").fetchall()
    return [event for (text,) in found for event in text.split("\x1e")]


def test_kill_9_in_a_big_import_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """A run killed with SIGKILL mid-import, then run again: every event stored once."""
    big = tmp_path / "Master.csv"
    lines = MASTER.read_text().splitlines()
    with open(big, "w") as out:
        for n in range(400):  # 400 copies of the six calls, each with its own linkedids
            out.write("".join(line.replace('"1710', f'"{1800 + n}') + "\n" for line in lines))
    db = tmp_path / "kill.db"
    code = "from cdrapi.cli.ingest import ingest; ingest()"
    args = [sys.executable, "-c", code, "cel", str(big), "--db", f"sqlite:///{db}",
            "--rejects", str(tmp_path / "r")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    process = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, start_new_session=True)
    wait_for(lambda: db.exists() and _has_events(db), timeout=60, step=0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    part = len(_events(db))
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    events = _events(db)
    assert 0 < part < len(events) == 400 * 117  # killed mid-import; then each event once
    assert len(set(events)) == len(events)


def _has_events(db: Path) -> bool:
    try:
        return bool(_events(db))
    except sqlite3.OperationalError:
        return False


def _cel_fields(engine: Engine) -> dict[str, tuple[Any, ...]]:
    """What cel_calls says of each call (linkedid -> its fields and its events, sorted)."""
    with engine.connect() as conn:
        found = conn.execute(select(cel_calls)).all()
    return {row.linkedid: (*row[2:], sorted(row.events.split("\x1e"))) for row in found}


def test_a_call_spread_over_a_big_import_is_summarized_from_all_its_events(
    store: Engine, tmp_path: Path
) -> None:
    """A big import (parsed in a producer process, in chunks): each call's first events
    near the start of the file, the rest near its end, so every call is stored by one
    batch and completed by another; each call's fields are those of the calls read at once."""
    rows = list(csv.reader(MASTER.read_text().splitlines()))
    first, rest = [], []
    for n in range(400):  # 400 copies of the six calls, each with its own ids
        copy = [[*row[:14], f"{row[14]}-{n}", f"{row[15]}-{n}", *row[16:]] for row in rows]
        first += copy[:50]
        rest += copy[50:]
    big = tmp_path / "Master.csv"
    with open(big, "w", newline="") as out:
        csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(first + rest)
    assert big.stat().st_size > 8 << 20  # more than two chunks: the producer parses it
    summary = ingest_cel(store, [big], _run())
    assert (summary.lines, summary.rejected, summary.duplicates) == (400 * 117, 0, 0)
    alone = connect(f"sqlite:///{tmp_path / 'alone.db'}")
    ingest_cel(alone, [MASTER], _run())
    want = _cel_fields(alone)
    got = _cel_fields(store)
    assert len(got) == 400 * len(want)
    for n in (0, 123, 399):
        for linkedid, (ivr_uniqueid, *fields, events) in want.items():
            mine = got[f"{linkedid}-{n}"]
            assert mine[0] == (ivr_uniqueid and f"{ivr_uniqueid}-{n}")
            assert list(mine[1:-1]) == fields
            assert len(mine[-1]) == len(events)


def test_an_event_without_a_linkedid_is_its_channels_call(store: Engine, tmp_path: Path) -> None:
    """cel_custom writes an empty linkedid for a channel Asterisk gave none: the event is
    the call of its uniqueid (not of another column's value)."""
    path = tmp_path / "Master.csv"
    lines = MASTER.read_text().splitlines()
    cut = [line.replace('"1710403200.1","1710403200.1"', '"1710403200.1",""') for line in lines]
    assert cut != lines
    path.write_text("\n".join(cut) + "\n")
    assert ingest_cel(store, [path], _run()).rejected == 0
    ingest_csv(store, [CDRS], _run())
    _check(store)


def test_a_line_the_csv_module_refuses_is_rejected_not_a_traceback(
    store: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    good = MASTER.read_text().splitlines()
    path.write_text("\n".join([good[0], "CHAN_START,17\r10403200,x", *good[1:]]) + "\n")
    seen: list[Reject] = []
    summary = ingest_cel(store, [path], IngestRun(SETTINGS, DIRECTORY, rejects=None,
                                                  report=seen.append))  # fmt: skip
    assert [(r.line, r.reason.split(":")[0]) for r in seen] == [(2, "not a CSV line")]
    assert summary.rejected == 1 and summary.lines == 118
    ingest_csv(store, [CDRS], _run())
    _check(store)
