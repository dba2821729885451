"""A server that goes down mid-pull (a restart): its port closed, its connections dropped,
then open again on the same port. With the default policy ``cdrapi pull`` waits it out and
carries on as soon as the server is back, every call once; past ``--retry-for`` it stops
with an error that names the state file, which the next run resumes from. The requests in
flight during an outage share one budget of time."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from click.testing import CliRunner

from cdrapi.cli.pull import parse_duration, pull
from cdrapi.client import AsyncClient, Retry, ServerError
from cdrapi.server.app import create_app
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.client.conftest import KEY, TOKEN, Fault, Seen, Switch
from tests.conftest import free_port, start_uvicorn
from tests.data import load, sample_rows

PULL = "from cdrapi.cli.pull import pull; pull()"


class Restartable:
    """An app under uvicorn on one loopback port that can be shut down (the port closed,
    open connections dropped) and started again on the same port."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            access_log=False,
            lifespan="off",
        )
        self._server, self._thread = start_uvicorn(config)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "uvicorn did not stop"
        self._server = self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None


@dataclass
class Site:
    server: Restartable
    switch: Switch
    ids: list[int]

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def site_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('down') / 'calls.db'}"
    engine = connect(db_url)
    rows = load(engine, sample_rows(3000))  # 30 pages
    switch = Switch(create_app(Settings(db=db_url, api_token=TOKEN, api_key=KEY)))
    server = Restartable(switch)
    server.start()
    try:
        yield Site(server, switch, [row["id"] for row in rows])
    finally:
        server.stop()
        engine.dispose()


@pytest.fixture
def site(site_once: Site) -> Site:
    """A server with 3,000 calls, up, each answer slowed down a little (a pull takes a
    while, so that it can be interrupted mid-way)."""
    if not site_once.server.running:
        site_once.server.start()
    site_once.switch.reset()
    site_once.switch.delay = 0.05
    return site_once


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def ids_in(path: Path) -> list[int]:
    return [int(orjson.loads(line)["id"]) for line in path.read_bytes().splitlines()]


def from_ids(requests: list[Seen]) -> list[int]:
    """The ``from_id`` each request asked with (0 for none)."""
    found = []
    for seen in requests:
        _, _, rest = seen.body.decode().partition("filters%5Bfrom_id%5D=")
        found.append(int(rest.partition("&")[0]) if rest else 0)
    return found


def test_a_server_restart_mid_pull_is_waited_out_with_the_defaults(
    site: Site, tmp_path: Path
) -> None:
    out, state = tmp_path / "calls.jsonl", tmp_path / "state.json"
    args = [sys.executable, "-c", PULL, site.url, "--token", TOKEN, "--key", KEY]
    args += ["-o", str(out), "--state", str(state), "--no-progress"]  # defaults otherwise
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(site.switch.requests) >= 6, "the pull to start")
        site.server.stop()  # the port is closed: connections refused
        assert process.poll() is None and len(site.switch.requests) < 30, "pull done too soon"
        time.sleep(3.0)  # the old default (4 retries from 0.5 s) gave up within about 2 s
        site.server.start()
        back = time.monotonic()
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    finished = time.monotonic()
    assert process.returncode == 0, stderr.decode()
    assert ids_in(out) == site.ids  # every call, once, in order
    # Carried on when the server was back, not after a backoff of up to 10 s.
    assert finished - back < 3.0
    lines = stderr.decode().splitlines()
    assert any(line.endswith("; retrying for up to 60.0s") for line in lines), lines
    assert any(line.startswith("the server answers again, after ") for line in lines), lines
    assert lines[-1].startswith(f"Pulled {len(site.ids):,} records into {out}")


def test_a_server_that_stays_down_fails_within_retry_for_and_the_next_run_resumes(
    site: Site, tmp_path: Path
) -> None:
    out, state = tmp_path / "calls.jsonl", tmp_path / "state.json"
    args = [site.url, "--token", TOKEN, "--key", KEY, "-o", str(out), "--state", str(state)]
    args += ["--no-progress", "--checkpoint-every", "600"]  # no checkpoint before it fails
    stopped = threading.Event()
    down_at: list[float] = []

    def stop_midway() -> None:
        wait_until(lambda: len(site.switch.requests) >= 10, "the pull to start")
        down_at.append(time.monotonic())
        site.server.stop()
        stopped.set()

    stopper = threading.Thread(target=stop_midway)
    stopper.start()
    result = CliRunner().invoke(pull, [*args, "--retry-for", "2s"], catch_exceptions=False)
    failed_at = time.monotonic()
    stopper.join()
    assert stopped.is_set()
    assert result.exit_code == 1
    assert 2.0 <= failed_at - down_at[0] <= 4.0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: {site.url}/api/cdr: ")
    assert error.endswith(
        f"(gave up after retrying for 2.0s). The state file {state} is intact: run the same "
        "pull again to resume where this one stopped."
    )
    assert "Traceback" not in result.stderr
    assert not out.exists()  # a file output is published only when complete
    staged = orjson.loads(state.read_bytes())["staging"]["last_id"]
    assert staged >= site.ids[299]  # what was fetched before the server went is kept

    site.server.start()
    site.switch.requests.clear()
    again = CliRunner().invoke(pull, args, catch_exceptions=False)
    assert again.exit_code == 0, again.stderr
    assert ids_in(out) == site.ids  # no call lost, none doubled
    assert from_ids(site.switch.requests)[0] == staged + 1  # resumed, not started over
    assert again.stderr.startswith(f"Pulled {len(site.ids) - site.ids.index(staged) - 1:,} ")


def test_requests_in_flight_during_an_outage_share_one_budget(site: Site) -> None:
    """Four requests in flight fail together; one of them first hears of the outage a
    second late. All four give up together, ``retry_for`` after its first failure."""
    page_4 = b"page=4&"
    site.switch.delay = 0.0
    late: list[Seen] = []

    def choose(seen: Seen) -> Fault:
        if seen.body.startswith(page_4) and not late:  # its first try is answered late
            late.append(seen)
            return Fault(status=503, delay=1.0)
        return Fault(status=503)

    site.switch.choose = choose
    policy = Retry(retry_for=1.5, backoff=0.05, max_backoff=0.2)

    async def timed(client: AsyncClient, number: int) -> float:
        with pytest.raises(ServerError, match=r"\(gave up after retrying for 1\.5s\)$"):
            await client.page(number)
        return time.time()

    async def four() -> list[float]:
        async with AsyncClient(site.url, TOKEN, KEY, concurrency=4, retry=policy) as client:
            return await asyncio.gather(*(timed(client, number) for number in range(1, 5)))

    gave_up = asyncio.run(four())
    first_failure = min(seen.at for seen in site.switch.requests)
    # together at 1.5 s (slack for a loaded machine); the late one alone would go at 2.5 s
    assert all(1.5 <= at - first_failure < 2.3 for at in gave_up), [
        at - first_failure for at in gave_up
    ]
    tries = [seen.body[:7] for seen in site.switch.requests]
    assert tries.count(page_4) < tries.count(b"page=1&")  # it did lose its first second
    for number in range(1, 5):  # each kept trying to the end, at its own backoff
        prefix = f"page={number}&".encode()
        last = max(seen.at for seen in site.switch.requests if seen.body.startswith(prefix))
        assert last - first_failure > 1.5 - 0.3


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60s", 60),
        ("60", 60),
        ("0", 0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("5m", 300),
        ("1h30m", 5400),
        ("2M 30S", 150),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "-1s", "5x", "1m-", "forever", "1.s"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
    result = CliRunner().invoke(
        pull, ["http://x", "--token", "t", "-o", "x.jsonl", "--retry-for", text]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--retry-for': not a duration" in result.stderr


def test_no_retry_with_retry_for_0(site: Site, tmp_path: Path) -> None:
    site.switch.always = Fault(status=503)
    out = tmp_path / "x.jsonl"
    result = CliRunner().invoke(
        pull, [site.url, "--token", TOKEN, "--key", KEY, "-o", str(out), "--retry-for", "0"]
    )
    assert result.exit_code == 1
    assert len(site.switch.requests) == 1
    left = f"{out} is left as it was (with a state file, a pull resumes)."
    assert result.stderr.strip().endswith(left)
