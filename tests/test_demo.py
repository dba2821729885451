"""The demo generator: determinism, realism, and data that gives every filter a meaning."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import threading
import wave
from array import array
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from time import monotonic, sleep
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from cdrapi.cli import main
from cdrapi.demo import DemoSummary, _stream, generate
from cdrapi.demo.audio import write_recordings
from cdrapi.demo.records import DEMO_COLUMNS, records
from cdrapi.store.engine import connect, read_version
from cdrapi.store.schema import SECONDARY_INDEXES
from tests.conftest import free_port, need

END = dt.date(2024, 3, 31)  # 30 days: 2024-03-02 .. 2024-03-31, summer time from 03-31
CALLS = 5000


def build(path: Path, calls: int = CALLS, **kwargs: Any) -> tuple[Engine, DemoSummary]:
    engine = connect(f"sqlite:///{path}")
    kwargs.setdefault("end", END)
    return engine, generate(engine, calls=calls, **kwargs)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    engine, summary = build(path)
    engine.dispose()
    assert summary.calls == CALLS
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


def one(conn: sqlite3.Connection, sql: str, *args: Any) -> Any:
    return conn.execute(sql, args).fetchone()[0]


def column(conn: sqlite3.Connection, sql: str, *args: Any) -> list[Any]:
    return [row[0] for row in conn.execute(sql, args)]


def dump(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM calls ORDER BY id").fetchall()


def test_summary(tmp_path: Path) -> None:
    _, summary = build(tmp_path / "a.db", calls=1234, days=7, end=dt.date(2024, 1, 7))
    assert summary == DemoSummary(
        calls=1234,
        start=dt.date(2024, 1, 1),
        end=dt.date(2024, 1, 7),
        first_id=1,
        last_id=1234,
        projects=3,
        users=40,
        queues=5,
        inbound_routes=8,
        trunks=3,
    )
    with pytest.raises(ValueError):
        build(tmp_path / "b.db", calls=-1)
    _, empty = build(tmp_path / "c.db", calls=0)
    assert empty.calls == 0 and empty.first_id is None


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    build(tmp_path / "a.db", calls=1500)
    build(tmp_path / "b.db", calls=1500)
    build(tmp_path / "c.db", calls=1500, seed=2)
    first, second, other = (dump(tmp_path / f"{name}.db") for name in "abc")
    assert len(first) == 1500 and first == second
    assert first != other and len(other) == 1500


def test_default_end_is_today(tmp_path: Path) -> None:
    _, summary = build(tmp_path / "a.db", calls=10, days=3, end=None)
    assert summary.end == dt.date.today()
    assert summary.start == dt.date.today() - dt.timedelta(days=2)


def test_producer_process_makes_the_same_records() -> None:
    dates = [END - dt.timedelta(days=6 - i) for i in range(7)]
    assert list(_stream(3, 4500, dates, True)) == list(records(3, 4500, dates))


def test_stopping_early_stops_the_producer() -> None:
    dates = [END - dt.timedelta(days=29 - i) for i in range(30)]
    made = _stream(1, 300_000, dates, True)
    first = [next(made) for _ in range(10)]
    made.close()  # must neither hang nor leave the producer running
    assert first == list(islice(records(1, 300_000, dates), 10))


def test_an_error_in_the_producer_is_raised_not_waited_for() -> None:
    """An error making the records in the producer process is raised here, as it is
    without one (the reader used to wait forever for records that never came)."""
    with pytest.raises(IndexError):
        list(_stream(1, 10, [], False))  # no dates: nothing to make records over
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            list(_stream(1, 10, [], True))
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(30)
    assert not reader.is_alive(), "still waiting for the producer's records"
    assert [type(error) for error in outcome] == [IndexError]


def test_append_keeps_ids_growing_and_indexes_in_step(tmp_path: Path) -> None:
    engine, first = build(tmp_path / "a.db", calls=600)
    with engine.connect() as conn:
        version = read_version(conn)
    _, second = build(tmp_path / "a.db", calls=400, seed=7, end=END + dt.timedelta(days=30))
    assert (first.first_id, first.last_id) == (1, 600)
    assert (second.first_id, second.last_id) == (601, 1000)
    with engine.connect() as conn:
        assert read_version(conn) > version
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert column(conn, "SELECT id FROM calls ORDER BY id") == list(range(1, 1001))
        assert one(conn, "SELECT min(time) FROM calls WHERE id > 600") > one(
            conn, "SELECT max(time) FROM calls WHERE id <= 600"
        )
        names = set(column(conn, "SELECT name FROM sqlite_master WHERE type = 'index'"))
        assert {index.name for index in SECONDARY_INDEXES} <= names
        number = one(conn, "SELECT source FROM calls WHERE id = 999")
        found = column(
            conn,
            "SELECT rowid FROM calls_numbers WHERE calls_numbers MATCH ?",
            f'"{number[3:9]}"',
        )
        assert 999 in found
        assert one(conn, "SELECT count(*) FROM projects") == 3  # replaced, not doubled


def test_records_are_in_time_order(demo: sqlite3.Connection) -> None:
    times = column(demo, "SELECT time FROM calls ORDER BY id")
    assert times == sorted(times)
    assert times[0] >= "2024-03-02 00:00:00" and times[-1] < "2024-04-01 06:00:00"
    assert one(demo, "SELECT count(DISTINCT substr(time, 1, 10)) FROM calls") == 30


def test_every_filter_has_matching_and_other_rows(demo: sqlite3.Connection) -> None:
    def split(condition: str, *args: Any) -> None:
        yes = one(demo, f"SELECT count(*) FROM calls WHERE {condition}", *args)
        assert 0 < yes < CALLS, condition

    split("time BETWEEN '2024-03-11 00:00:00' AND '2024-03-15 23:59:59'")  # date_between
    split("substr(time, 12) BETWEEN '10:00:00' AND '11:59:59'")  # hour_between
    split("substr(time, 12) >= '22:00:00' OR substr(time, 12) <= '06:59:59'")  # wraps
    for project in (1, 2, 3):
        split("project_id = ?", project)
    assert len(column(demo, "SELECT DISTINCT user_id FROM calls WHERE user_id > 0")) == 40
    split("user_id IS NULL")
    assert len(column(demo, "SELECT DISTINCT inbound_route_id FROM calls")) == 9  # 8 + NULL
    for direction in ("IN", "OUT", "INTERNAL"):
        split("direction = ?", direction)
    for status in ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"):
        split("call_status = ?", status)
    split("source LIKE '0721%' OR destination LIKE '0721%'")  # telephone_like 0721*
    split("source LIKE '%555%' OR destination LIKE '%555%'")  # telephone_like 555
    split("destination LIKE '03%'")
    split("source LIKE '1__'")  # extensions
    split("external_id IS NOT NULL")
    for flag in ("transcription_id", "monitor_files", "recording_file"):
        split(f"{flag} IS NOT NULL")
    for value in (0, 1):
        split("is_recovered = ?", value)


def test_numbers_repeat_and_calls_have_several_legs(demo: sqlite3.Connection) -> None:
    repeated = column(
        demo,
        "SELECT source FROM calls WHERE direction = 'IN' GROUP BY source HAVING count(*) >= 3",
    )
    assert len(repeated) > 50
    number = repeated[0]
    both = one(
        demo,
        "SELECT count(DISTINCT direction) FROM calls WHERE source = ? OR destination = ?",
        number,
        number,
    )
    assert both >= 1
    legs = demo.execute(
        "SELECT linkedid, count(*), count(DISTINCT uniqueid), group_concat(sequence) "
        "FROM calls GROUP BY linkedid HAVING count(*) > 1"
    ).fetchall()
    assert len(legs) > 100
    assert all(row[1] == row[2] for row in legs)
    assert {row[3] for row in legs} >= {"1,2", "1,2,3"}
    assert one(demo, "SELECT count(*) FROM calls WHERE uniqueid = linkedid") > CALLS * 0.8
    assert one(demo, "SELECT count(DISTINCT uniqueid) FROM calls") == CALLS
    assert one(demo, "SELECT count(*) FROM calls WHERE transfers LIKE 'attended %'") > 0
    assert one(demo, "SELECT count(*) FROM calls WHERE transfers LIKE 'blind %'") > 0


def test_field_formats(demo: sqlite3.Connection) -> None:
    time_re = re.compile(r"^\d{4}-\d\d-\d\d [0-2]\d:[0-5]\d:[0-5]\d$")
    suffix = re.compile(r"-[0-9a-f]{8}$")
    info_re = re.compile(r"^DS:[A-Z]+\|HC:\d+\|HI:\S.*$")
    clid_re = re.compile(r'^"[^"]+" <\d+>$')
    rec_re = re.compile(
        r"^(\d{4})/(\d\d)/(\d\d)/(in|out|internal|q-[a-z-]+)-(\w+)-(\w+)-"
        r"(\d{8})-(\d{6})-(\d{10}\.\d+)\.wav$"
    )
    for row in demo.execute("SELECT * FROM calls"):
        assert time_re.match(row["time"]) and time_re.match(row["time_end"])
        start = dt.datetime.fromisoformat(row["time"])
        end = dt.datetime.fromisoformat(row["time_end"])
        assert (end - start).total_seconds() == row["duration"]
        # Derived as ingestion derives: CEL gives an agent's leg the seconds its phone
        # rang (after the IVR and the queue wait); without an agent, the CDR's
        # duration - billsec stands (the IVR and the wait included). queue_log says how
        # long a caller waited when an agent answers (CONNECT), not when one rang in vain.
        waited = row["ivr_duration"] + row["hold_time"]
        if row["qname"] and row["dstchannel"]:
            assert row["duration"] >= waited + row["ring_time"] + row["billsec"]
            if row["call_status"] == "ANSWERED":
                assert row["duration"] == waited + row["ring_time"] + row["billsec"]
        else:
            assert row["duration"] == row["ring_time"] + row["billsec"]
            assert row["ring_time"] >= waited
        assert (row["billsec"] > 0) == (row["call_status"] == "ANSWERED")
        assert re.match(r"^\d{10}\.\d+$", row["uniqueid"])
        assert re.match(r"^\d{10}\.\d+$", row["linkedid"])
        assert info_re.match(row["call_status_info"])
        assert clid_re.match(row["caller_id"])
        assert row["channel_formatted"] and not suffix.search(row["channel_formatted"])
        assert row["channel"] == row["channel_formatted"] + row["channel"][-9:]
        assert suffix.search(row["channel"])
        if row["dstchannel"]:
            assert row["dstchannel"][:-9] == row["dstchannel_formatted"]
            assert suffix.search(row["dstchannel"])
        else:
            assert row["dstchannel_formatted"] == ""
        assert row["channel_formatted"].startswith("PJSIP/")
        expected = {"IN": ("inbound", "queue"), "OUT": ("outbound",), "INTERNAL": ("internal",)}
        assert row["code"] in expected[row["direction"]]
        # as derivation writes them: with the queue_log's outcome of a call that left the
        # queue unanswered, and recovery's "answered elsewhere" on a rung leg of an
        # answered call
        assert row["call_codes"].endswith(
            ("answered", "no answer", "busy", "failed", "congestion", "elsewhere", "abandoned",
             "exit empty")
        )  # fmt: skip
        assert (row["qname"] is not None) == (row["code"] == "queue")
        if row["recording_file"]:
            match = rec_re.match(row["recording_file"])
            assert match, row["recording_file"]
            assert "-".join(match.group(1, 2, 3)) == row["time"][:10]
            assert match.group(7) + match.group(8) == re.sub(r"\D", "", row["time"])
            assert match.group(9) == row["uniqueid"]
            assert row["recording_url"].endswith("/" + row["recording_file"])
            assert row["call_status"] == "ANSWERED"
        else:
            assert row["recording_url"] is None and row["transcription_id"] is None
        if row["transcription_id"]:
            assert row["transcription_text"]
        assert (row["monitor_files"] is None) == (row["monitor_urls"] is None)
        if row["direction"] == "OUT":
            assert re.match(r"^0[237]\d{8}$", row["destination"])
        if row["direction"] == "IN":
            assert re.match(r"^0[237]\d{8}$", row["source"])
            assert row["inbound_route_id"] is not None and row["did"]


def test_uniqueid_epoch_is_utc_of_the_local_time(demo: sqlite3.Connection) -> None:
    for time, uniqueid in demo.execute("SELECT time, uniqueid FROM calls WHERE sequence = 1"):
        local = dt.datetime.fromisoformat(time)
        offset = 3 if local.date() >= dt.date(2024, 3, 31) else 2  # EEST from 03-31
        utc = local - dt.timedelta(hours=offset)
        assert int(uniqueid.split(".")[0]) == int(utc.replace(tzinfo=dt.UTC).timestamp())


def test_names_match_the_directory(demo: sqlite3.Connection) -> None:
    checks = {
        "users": "SELECT count(*) FROM calls c JOIN users u ON u.id = c.user_id "
        "WHERE u.fullname != c.user_fullname",
        "projects": "SELECT count(*) FROM calls c JOIN projects p ON p.id = c.project_id "
        "WHERE p.name != c.project",
        "routes": "SELECT count(*) FROM calls c JOIN inbound_routes r "
        "ON r.id = c.inbound_route_id WHERE r.name != c.inbound_route OR r.did != c.did",
        "channels": "SELECT count(*) FROM calls c JOIN users u ON u.id = c.user_id "
        "WHERE u.channel_pattern NOT IN (c.channel_formatted, c.dstchannel_formatted)",
        "orphans": "SELECT count(*) FROM calls WHERE (user_id IS NULL) != (user_fullname IS NULL)"
        " OR project_id NOT IN (SELECT id FROM projects)",
    }
    for name, sql in checks.items():
        assert one(demo, sql) == 0, name
    assert one(demo, "SELECT count(*) FROM users WHERE fullname LIKE '%ș%' OR fullname "
               "LIKE '%ă%'") > 0  # fmt: skip


def test_is_recovered_means_answered_within_a_day(demo: sqlite3.Connection) -> None:
    missed = demo.execute(
        "SELECT c.*, EXISTS (SELECT 1 FROM calls l WHERE l.linkedid = c.linkedid "
        "AND l.call_status = 'ANSWERED') AS answered FROM calls c "
        "WHERE direction = 'IN' AND call_status != 'ANSWERED'"
    ).fetchall()
    for row in missed:
        assert (row["is_recovered"] is None) == bool(row["answered"]), row["id"]
    assert one(demo, "SELECT count(*) FROM calls WHERE is_recovered IS NOT NULL "
               "AND (direction != 'IN' OR call_status = 'ANSWERED')") == 0  # fmt: skip
    recomputed = demo.execute(
        "SELECT c.id, c.is_recovered, EXISTS (SELECT 1 FROM calls a "
        "WHERE a.call_status = 'ANSWERED' AND a.time > c.time "
        "AND a.time <= datetime(c.time, '+1 day') AND ((a.direction = 'IN' "
        "AND a.source = c.source) OR (a.direction = 'OUT' AND a.destination = c.source))) "
        "FROM calls c WHERE c.is_recovered IS NOT NULL"
    ).fetchall()
    assert len(recomputed) > 100
    assert [row[1] for row in recomputed] == [row[2] for row in recomputed]


def test_business_hours(demo: sqlite3.Connection) -> None:
    hours = [0] * 24
    office = 0
    for (time,) in demo.execute("SELECT time FROM calls"):
        moment = dt.datetime.fromisoformat(time)
        hours[moment.hour] += 1
        office += moment.weekday() < 5 and 8 <= moment.hour < 18
    assert office > 0.8 * CALLS
    assert sum(hours[22:] + hours[:6]) < 0.02 * CALLS
    assert max(range(24), key=hours.__getitem__) in (10, 11, 12)
    weekdays = [0] * 7
    for (day,) in demo.execute("SELECT substr(time, 1, 10) FROM calls"):
        weekdays[dt.date.fromisoformat(day).weekday()] += 1
    assert min(weekdays[:5]) > 3 * max(weekdays[5:])


def test_disposition_mix(demo: sqlite3.Connection) -> None:
    share = {
        status: count / CALLS
        for status, count in demo.execute(
            "SELECT call_status, count(*) FROM calls GROUP BY call_status"
        )
    }
    assert 0.6 < share["ANSWERED"] < 0.9
    assert 0.05 < share["NO ANSWER"] < 0.3
    assert all(share[status] < 0.06 for status in ("BUSY", "FAILED", "CONGESTION"))
    queue = demo.execute(
        "SELECT count(*), sum(hold_time > 0), sum(call_status = 'NO ANSWER') FROM calls "
        "WHERE code = 'queue'"
    ).fetchone()
    assert queue[0] > CALLS / 3 and queue[1] > queue[0] / 2 and queue[2] > 0
    answered = one(demo, "SELECT count(*) FROM calls WHERE call_status = 'ANSWERED'")
    recorded = one(demo, "SELECT count(*) FROM calls WHERE recording_file IS NOT NULL")
    assert 0.6 * answered < recorded < answered


def test_columns_cover_the_record() -> None:
    assert "id" not in DEMO_COLUMNS and len(DEMO_COLUMNS) == len(set(DEMO_COLUMNS))
    row = next(records(1, 10, [END]))
    assert len(row) == len(DEMO_COLUMNS)


# --- audio for the recordings of the last days (cdrapi.demo.audio) ---------------------


def wav_of(path: Path) -> tuple[tuple[int, int, int], int, list[int]]:
    """A WAV file's (channels, sample width, rate), its length in samples and its first
    ten seconds' samples."""
    with wave.open(str(path)) as handle:
        params = (handle.getnchannels(), handle.getsampwidth(), handle.getframerate())
        frames = handle.readframes(80_000)
        return params, handle.getnframes(), list(array("h", frames))


def test_the_last_days_recordings_get_playable_phone_audio(tmp_path: Path) -> None:
    engine, _ = build(tmp_path / "demo.db", calls=3000, days=10)
    root = tmp_path / "recordings"
    since = END - dt.timedelta(days=2)
    summary = write_recordings(engine, root, since=since)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT time, recording_file, monitor_files, billsec FROM calls"
            " WHERE recording_file IS NOT NULL OR monitor_files IS NOT NULL"
        ).all()
    engine.dispose()
    recent = {
        path: billsec
        for time, recording, monitor, billsec in rows
        if time >= f"{since} 00:00:00"
        for path in (recording, monitor)
        if path
    }
    older = [recording for time, recording, _, _ in rows if time < f"{since} 00:00:00"]
    assert len(recent) > 20 and older
    assert summary.files == len(recent) and summary.clips <= 27
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(recent)  # every recent recording, and nothing older
    heard = 0
    for n, (path, billsec) in enumerate(sorted(recent.items())):
        params, length, samples = wav_of(root / path)
        assert params == (1, 2, 8000), path  # 8 kHz mono 16-bit, a phone's
        assert length == 8000 * min(45, max(5, -(-billsec // 5) * 5)), path
        if n % 10 or len(samples) < 80_000:
            continue
        heard += 1  # ten seconds of every tenth: voices, and pauses between them
        windows = [sum(s * s for s in samples[i : i + 800]) / 800 for i in range(0, 80_000, 800)]
        assert sum(e > 1500**2 for e in windows) > 30, path  # voices
        assert sum(e < 300**2 for e in windows) > 3, path  # pauses: the line's hiss alone
        assert max(abs(s) for s in samples) < 32767, path  # never clipped
    assert heard


def test_audio_is_the_same_every_time_and_kept_if_there(tmp_path: Path) -> None:
    engine, _ = build(tmp_path / "demo.db", calls=500, days=3)
    first, second = tmp_path / "one", tmp_path / "two"
    write_recordings(engine, first, since=END)
    write_recordings(engine, second, since=END)
    files = sorted(p.relative_to(first) for p in first.rglob("*.wav"))
    assert files and files == sorted(p.relative_to(second) for p in second.rglob("*.wav"))
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    (first / files[0]).write_bytes(b"the PBX's own file")
    again = write_recordings(engine, first, since=END)
    assert again.files == len(files) and again.clips == 0
    assert (first / files[0]).read_bytes() == b"the PBX's own file"  # never overwritten
    engine.dispose()


def test_cdrapi_demo_writes_the_audio_with_recordings_dir(tmp_path: Path) -> None:
    db, root = f"sqlite:///{tmp_path / 'demo.db'}", tmp_path / "recordings"
    args = ["demo", "--db", db, "--calls", "400", "--days", "3", "--end", "2024-03-31"]
    result = CliRunner().invoke(main, [*args, "--recordings-dir", str(root), "--audio-days", "1"])
    assert result.exit_code == 0, result.output
    written = list(root.rglob("*.wav"))
    assert written and all("2024/03/31" in str(p) for p in written)
    assert f"Wrote audio for {len(written)} recordings (2024-03-31 .. 2024-03-31;" in result.output
    plain = CliRunner().invoke(main, ["demo", "--db", f"sqlite:///{tmp_path / 'b.db'}",
                                      "--calls", "400", "--days", "3"])  # fmt: skip
    assert plain.exit_code == 0 and "audio" not in plain.output  # no directory, no audio


# --- make run: a newcomer is signed in and hears a recording ---------------------------


def test_make_run_signs_a_newcomer_in_and_the_player_plays(tmp_path: Path) -> None:
    need(shutil.which("make") is not None, "make is not installed")
    repo = Path(__file__).parents[1]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDRAPI_", "MAKE"))}
    command = [
        "make", "--no-print-directory", "-o", ".venv/bin/cdrapi", "run",
        f"DB_FILE={tmp_path / 'demo.db'}", f"RECORDINGS={tmp_path / 'recordings'}",
        f"STATE={tmp_path}", f"PORT={port}", "DEMO_CALLS=20000",
    ]  # fmt: skip

    def started() -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            found = re.search(r"Sign in at (http://\S+/) as admin, password (\S+)", line)
            if found:
                assert found.group(1) == f"http://127.0.0.1:{port}/"
                break
        else:
            raise AssertionError("".join(lines))
        deadline = monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                return process, found.group(2)
            except httpx.TransportError:
                assert process.poll() is None and monotonic() < deadline, "".join(lines)
                sleep(0.1)

    def stop(process: subprocess.Popen[str]) -> None:
        os.killpg(process.pid, signal.SIGTERM)  # make and the server it started
        process.wait(timeout=20)

    process, password = started()
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as browser:
            signed = browser.post("/login", data={"username": "admin", "password": password})
            assert signed.status_code == 303 and browser.get("/").status_code == 200
            token = (tmp_path / ".cdrapi-token").read_text().strip()
            week = [str(dt.date.today() - dt.timedelta(days=6)), str(dt.date.today())]
            filters = {"has_recording_file": "1", "date_between": week}
            found = httpx.post(f"{base}/api/cdr", json={"filters": filters},
                               headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
            assert found["results"], found
            call = found["results"][0]
            page = browser.get(f"/calls/{call['linkedid'] or call['uniqueid']}")
            src = re.search(r'<audio controls preload="metadata" src="([^"]+)"', page.text)
            assert src, page.text
            audio = browser.get(html.unescape(src.group(1)), headers={"Range": "bytes=0-43"})
            assert audio.status_code == 206 and audio.content[:4] == b"RIFF"
            assert (
                audio.content[8:16] == b"WAVEfmt " and audio.headers["content-type"] == "audio/wav"
            )
            fmt = struct.unpack("<HHIIHH", audio.content[20:36])
            assert fmt == (1, 1, 8000, 16000, 2, 16)  # PCM, mono, 8 kHz, 16 bits
    finally:
        stop(process)
    process, again = started()  # the second time: the same account, the same password
    stop(process)
    assert again == password
    assert oct((tmp_path / ".cdrapi-admin-password").stat().st_mode & 0o777) == "0o600"


# --- derived as real records are: CEL, queue_log and CDRs through ingestion's code -----


class Collected:
    """The PBX's own logs of each call (records()' ``pbx`` hook)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[tuple[str, ...]], list[Any], list[Any]]] = []

    def call(self, cdrs: list[tuple[str, ...]], cel: list[Any], log: list[Any]) -> None:
        self.calls.append((cdrs, cel, log))

    def day(self, midnight: str, epoch: int) -> None:
        pass

    def end(self) -> None:
        pass


def test_ivr_paths_transfers_and_monitor_files_are_read_from_cel(
    demo: sqlite3.Connection,
) -> None:
    ivr = column(demo, "SELECT DISTINCT ivr_log FROM calls WHERE ivr_log IS NOT NULL")
    # the menus' contexts and the keys pressed, then where the call went (CEL derivation)
    assert "ivr-principal > 1 ivr-suport > 1 queue suport" in ivr
    assert "ivr-vanzari > 2 queue vanzari" in ivr
    assert all(re.fullmatch(r"ivr-\w+ > \d( ivr-\w+ > \d)? queue [a-z-]+", log) for log in ivr)
    assert one(demo, "SELECT count(*) FROM calls WHERE ivr_log IS NOT NULL AND "
               "(ivr_duration <= 0 OR sequence != 1)") == 0  # fmt: skip
    agent = r"[^()]+ \(1\d\d\)"
    for transfers in column(demo, "SELECT transfers FROM calls WHERE transfers IS NOT NULL"):
        assert re.fullmatch(rf"(blind|attended) {agent} -> {agent} at \d\d:\d\d:\d\d", transfers)
    # a transfer and a monitor file are the call's: on each of its legs
    spread = demo.execute(
        "SELECT linkedid, count(*), count(transfers), count(monitor_files) FROM calls "
        "GROUP BY linkedid HAVING count(transfers) > 0 OR count(monitor_files) > 0"
    ).fetchall()
    assert spread and all(row[2] in (0, row[1]) and row[3] in (0, row[1]) for row in spread)
    details = column(demo, "SELECT queue_log FROM calls WHERE queue_log LIKE '%CONNECT%'")
    assert details and all(re.search(rf"CONNECT {agent} after \d+s", log) for log in details)


def test_the_records_are_what_ingestion_derives_from_the_pbx_logs() -> None:
    from cdrapi.demo import directory as demo_directory
    from cdrapi.demo.derivation import ZONE, DemoRecordings
    from cdrapi.ingest.cel_fields import People, Recordings
    from cdrapi.ingest.cel_fields import summarize as cel_summary
    from cdrapi.ingest.derive import Deriver
    from cdrapi.ingest.directory import Directory
    from cdrapi.ingest.row import ROW_FIELDS

    dates = [END - dt.timedelta(days=2 - i) for i in range(3)]
    pbx = Collected()
    made = {row[0]: dict(zip(DEMO_COLUMNS, row, strict=True)) for row in
            records(5, 800, dates, pbx)}  # fmt: skip
    directory = Directory.from_tables(demo_directory.rows())
    deriver = Deriver(directory, recordings=DemoRecordings(),
                      public_url="https://pbx.demo.cdrapi.ro")  # fmt: skip
    people, where = People(directory), Recordings(None, "https://pbx.demo.cdrapi.ro")
    fields = ("caller_id", "direction", "user_fullname", "project", "inbound_route",
              "call_status", "call_status_info", "recording_url", "billsec",
              "duration")  # fmt: skip
    assert sum(len(cdrs) for cdrs, _, _ in pbx.calls) == len(made) == 800
    for cdrs, cel, _log in pbx.calls:
        for cdr in cdrs:
            derived = dict(zip(ROW_FIELDS, deriver.row(cdr), strict=True))
            record = made[derived["uniqueid"]]
            assert {f: record[f] for f in fields} == {f: derived[f] for f in fields}
        linkedid = cdrs[0][19]
        from_cel = cel_summary(linkedid, cel, people, where, ZONE)
        assert made[linkedid]["ivr_log"] == from_cel["ivr_log"]
        assert made[linkedid]["transfers"] == from_cel["transfers"]
        assert cel[-1][1] == "LINKEDID_END" and [e[0] for e in cel] == sorted(e[0] for e in cel)
