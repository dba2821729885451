"""An incremental pull killed at any moment (SIGKILL, in a subprocess) and started again
ends with every call in the output exactly once, and never leaves a half-written file in
place of the output. Also the two instants between the steps of publishing a file, which a
kill cannot be aimed at, simulated in-process."""

from __future__ import annotations

import csv
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from cdrapi.client import pull
from cdrapi.client.outputs.jsonl import JsonlOutput
from tests.client.conftest import FAST, KEY, TOKEN, Server, server_with

PULL = "from cdrapi.cli.pull import pull; pull()"


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """3,000 calls (30 pages), each request slowed down so that a pull takes a while."""
    with server_with(tmp_path_factory.mktemp("big") / "calls.db", 3000) as server:
        yield server


def start_pull(server: Server, output: str, state: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-c", PULL, server.url, "--token", TOKEN, "--key", KEY]
    args += ["-o", output, "--state", str(state), "--checkpoint-every", "0.02"]
    args += ["--concurrency", "2", "--no-progress"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def progress_of(state: Path) -> int:
    """How far the state says the pull has durably got."""
    try:
        data = orjson.loads(state.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return 0
    staged = (data.get("staging") or {}).get("last_id")
    return max(staged or 0, data.get("last_id") or 0)


def kill_midway(server: Server, output: str, state: Path) -> bool:
    """Start a pull and SIGKILL it once it has made progress; False if it finished first."""
    before = progress_of(state)
    process = start_pull(server, output, state)
    deadline = time.monotonic() + 30
    while process.poll() is None and progress_of(state) <= before:
        assert time.monotonic() < deadline, "the pull made no progress"
        time.sleep(0.005)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


def ids_in(output: str) -> list[int]:
    if output.startswith("sqlite:///"):
        with sqlite3.connect(output.removeprefix("sqlite:///")) as conn:
            return [row[0] for row in conn.execute("SELECT id FROM calls ORDER BY rowid")]
    path = Path(output)
    if path.suffix == ".jsonl":
        return [int(orjson.loads(line)["id"]) for line in path.read_bytes().splitlines()]
    if path.suffix == ".csv":
        with open(path, newline="") as file:
            header, *rows = list(csv.reader(file))
        assert header[0] == "id"
        return [int(row[0]) for row in rows]
    return list(pq.read_table(path, columns=["id"]).column("id").to_pylist())


@pytest.mark.parametrize("name", ["calls.jsonl", "calls.csv", "calls.parquet", "calls.db"])
def test_killed_pulls_resume_with_every_call_once(
    big_server: Server, tmp_path: Path, name: str
) -> None:
    big_server.switch.reset()
    big_server.switch.delay = 0.01
    output = f"sqlite:///{tmp_path / name}" if name.endswith(".db") else str(tmp_path / name)
    state = tmp_path / "state.json"
    file_output = not name.endswith(".db")

    killed = sum(kill_midway(big_server, output, state) for _ in range(3))
    assert killed >= 2, "the pull finished before it could be killed"
    if file_output:
        assert not Path(output).exists()  # never a half-written output
    finished = start_pull(big_server, output, state)
    assert finished.wait(timeout=60) == 0, finished.stderr.read() if finished.stderr else ""
    assert ids_in(output) == big_server.ids

    # Once more, with an output in place: a kill leaves it exactly as it was.
    before = Path(output).read_bytes() if file_output else b""
    added = big_server.add_calls(700, seed=21)
    try:
        kill_midway(big_server, output, state)
        if file_output:
            assert Path(output).read_bytes() == before
        finished = start_pull(big_server, output, state)
        assert finished.wait(timeout=60) == 0
        assert ids_in(output) == big_server.ids
        assert orjson.loads(state.read_bytes())["last_id"] == added[-1]["id"]
    finally:
        with big_server.engine.begin() as conn:  # leave the shared server as it was
            conn.exec_driver_sql(f"DELETE FROM calls WHERE id >= {added[0]['id']}")
            conn.exec_driver_sql("UPDATE meta SET value = value + 1 WHERE key = 'version'")
        del big_server.rows[-len(added) :]


class DiesPublishing(JsonlOutput):
    """Dies just before (or just after) the rename that publishes the file."""

    def __init__(self, path: Path, *, after: bool) -> None:
        super().__init__(path)
        self.after = after

    def publish(self, prepared: str | None) -> None:
        if self.after:
            super().publish(prepared)
        raise SystemExit("killed")


@pytest.mark.parametrize("after", [False, True], ids=["before-rename", "after-rename"])
def test_death_around_the_rename_is_completed_by_the_next_pull(
    fresh_server: Server, tmp_path: Path, after: bool
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out, state = folder / "calls.jsonl", folder / "state.json"
    options: dict[str, Any] = {"api_key": KEY, "state": state, "retry": FAST}
    with pytest.raises(SystemExit):
        pull(fresh_server.url, TOKEN, DiesPublishing(out, after=after), **options)
    assert out.exists() == after
    fresh_server.switch.requests.clear()
    assert pull(fresh_server.url, TOKEN, out, **options).records == 0
    assert ids_in(str(out)) == fresh_server.ids
    assert len(fresh_server.switch.requests) == 1  # nothing fetched again
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["calls.jsonl", "state.json", "state.json.lock"]
    )
