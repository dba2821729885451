"""``cdrapi pull`` as a user runs it: options to filters, errors as one clean line, and
progress with records per second and ETA: a live bar on a terminal, plain lines in logs."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from cdrapi.cli.pull import parse_filters, pull
from cdrapi.client.progress import Progress, duration, status
from tests.client.conftest import KEY, TOKEN, Fault, Server
from tests.data import oracle


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(pull, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_pull_with_dates_and_filters(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    code, stdout, stderr = invoke(
        server.url,
        "--token",
        TOKEN,
        "--key",
        KEY,
        "--from",
        "2024-01-05",
        "--to",
        "2024-01-20 12:00",
        "-f",
        "direction=IN",
        "--filter",
        "direction=OUT",
        "-f",
        "hour_between=08,17:30",
        "-o",
        str(out),
    )
    assert code == 0, stderr
    meaning = {
        "date_between": ["2024-01-05", "2024-01-20 12:00"],
        "direction": ["IN", "OUT"],
        "hour_between": ["08", "17:30"],
    }
    expected = [row["id"] for row in server.rows if oracle(row, meaning)]
    assert [int(orjson.loads(line)["id"]) for line in out.read_bytes().splitlines()] == expected
    assert stdout == ""
    assert stderr.startswith(f"Pulled {len(expected):,} records into {out} in ")


def test_token_and_key_from_the_environment(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "calls.csv"
    env = {"CDRAPI_API_TOKEN": TOKEN, "CDRAPI_API_KEY": KEY}
    code, _, stderr = invoke(f"{server.url}/api/cdr", "-o", str(out), "--no-progress", env=env)
    assert code == 0, stderr
    assert len(out.read_text().splitlines()) == 1 + len(server.rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token", "wrong"], "Error: HTTP 401 from {url}/api/cdr: Unauthorized"),
        (["--key", "wrong"], "Error: HTTP 403 from {url}/api/cdr: Invalid api_hash"),
        (["-f", "nope=1"], "Error: HTTP 400 from {url}/api/cdr: Invalid filter: nope"),
        (["-f", "direction=UP"], "Error: HTTP 400 from {url}/api/cdr: Invalid direction: UP"),
    ],
)
def test_server_errors_are_one_clean_line(
    server: Server, tmp_path: Path, args: list[str], message: str
) -> None:
    options = {"--token": TOKEN, "--key": KEY}
    rest = list(args)
    for name in list(options):
        if name in rest:
            options.pop(name)
    base = [item for pair in options.items() for item in pair]
    code, _, stderr = invoke(server.url, *base, *rest, "-o", str(tmp_path / "x.jsonl"))
    assert code == 1
    (line,) = stderr.strip().splitlines()
    assert line.startswith(message.format(url=server.url))
    assert not (tmp_path / "x.jsonl").exists()


def test_a_server_that_keeps_failing_is_reported_after_the_retries(
    server: Server, tmp_path: Path
) -> None:
    server.switch.always = Fault(status=503, retry_after="0")
    out = tmp_path / "x.jsonl"
    code, _, stderr = invoke(server.url, "--token", TOKEN, "--retry-for", "0.4s", "-o", str(out))
    assert code == 1
    *notices, error = stderr.strip().splitlines()
    assert error.startswith(f"Error: HTTP 503 from {server.url}")
    assert error.endswith(
        f"(gave up after retrying for 0.4s). {out} is left as it was "
        "(with a state file, a pull resumes)."
    )
    assert notices[-1].endswith("; retrying for up to 0.4s")
    assert len(server.switch.requests) >= 2
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "calls.xlsx"], "cannot tell the format of 'calls.xlsx'"),
        (["-o", "x.jsonl", "--from", "2024/01/01"], "expected YYYY-MM-DD"),
        (["-o", "x.jsonl", "-f", "direction"], "expected NAME=VALUE"),
        (["-o", "x.jsonl", "-f", "hour_between=08"], "hour_between takes FROM,TO"),
        (["-o", "x.jsonl", "--from", "2024-01-01", "-f", "date_between=,2024-02-01"], "not both"),
    ],
)
def test_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, stderr = invoke("http://127.0.0.1:9", "--token", "t", *args)
    assert code == 2
    assert message in stderr
    code, _, stderr = invoke("pbx.example.com", "--token", "t", "-o", "x.jsonl")
    assert code == 2 and "not an http(s) URL" in stderr


def test_filter_options() -> None:
    assert parse_filters(("direction=IN", "direction=OUT", "telephone_like=0721*")) == {
        "direction": ["IN", "OUT"],
        "telephone_like": "0721*",
    }
    assert parse_filters(("date_between=,2024-01-15", "hour_between=22:00,06:00")) == {
        "date_between": [None, "2024-01-15"],
        "hour_between": ["22:00", "06:00"],
    }
    assert parse_filters(("hour_between=08", "hour_between=17")) == {"hour_between": ["08", "17"]}
    assert parse_filters(("source=a=b",)) == {"source": "a=b"}


def test_progress_lines_for_logs() -> None:
    stream = io.StringIO()
    progress = Progress(stream, tty=False, interval=0)
    progress(500, 2000)
    progress(1000, 2000)
    progress.finish("Pulled 2,000 records")
    first, _, summary = stream.getvalue().splitlines()
    assert first.startswith("pulled 500/2,000 records  ")
    assert "records/s  ETA " in first
    assert summary == "Pulled 2,000 records"
    assert "\r" not in stream.getvalue()


def test_progress_bar_for_terminals() -> None:
    stream = io.StringIO()
    progress = Progress(stream, tty=True, interval=0, width=10)
    progress(250, 1000)
    drawn = stream.getvalue()
    assert drawn.startswith("\r██░░░░░░░░  25%  250/1,000 records  ")
    assert drawn.endswith("\x1b[K")
    assert status(250, 1000, 0.5) == (0.25, "250/1,000 records  500 records/s  ETA 0:02")
    assert status(10, None, 1.0) == (None, "10 records  10 records/s")
    assert duration(3725) == "1:02:05" and duration(None) == "--:--"


def test_a_terminal_sees_a_live_bar(server: Server, tmp_path: Path) -> None:
    server.switch.delay = 0.05  # 10 pages, about half a second: the bar is drawn on the way
    leader, follower = pty.openpty()
    args = [sys.executable, "-c", "from cdrapi.cli.pull import pull; pull()", server.url]
    args += ["--token", TOKEN, "--key", KEY, "-o", str(tmp_path / "calls.jsonl")]
    args += ["--concurrency", "1"]
    process = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=30) == 0
    os.close(leader)
    text = seen.decode()
    assert "\r█" in text and "records/s  ETA" in text
    assert "100%  1,000/1,000 records" in text
    assert text.rstrip().splitlines()[-1].startswith("Pulled 1,000 records into")
