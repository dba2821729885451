"""The web call log's speed (issue 11): a demo database served by uvicorn on loopback, one
worker, SQLite; medians of the runs. One section per page, each a function of
:data:`SECTIONS` taking the server's URL, a signed-in client and the server's pid.

    python bench/web_speed.py [--calls 1000000] [--db bench/results/web.db] [--runs 3]
                              [--only export]

- ``export``: ``GET /export.csv`` of every call (43 fields): records per second, and the
  server process's peak memory while it streams them: its own (anonymous) resident
  memory, ``RssAnon`` of /proc/PID/status sampled every 50 ms, and ``VmHWM`` (reset
  before each run through /proc/PID/clear_refs), which also counts the pages of the
  database file SQLite maps (``mmap_size``, up to 1 GiB: the kernel's page cache, shared
  and given back under pressure, not the export's memory).

The server is this file run with ``--serve DB PORT``: the sign-in and export routes (add
a section's routes to :func:`web_app`). Results are printed as a Markdown table and saved
to bench/results/web_speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
RESULTS = HERE / "results"
USER, PASSWORD = "bench", "bench-password-1"

#: Issue 11's targets.
EXPORT_RATE = 100_000  # records/s at least
EXPORT_MEMORY_MB = 100  # peak RSS under


def web_app(db: str) -> Any:
    """The web routes the sections measure, on ``db``."""
    from starlette.applications import Starlette

    from cdrapi.settings import Settings
    from cdrapi.store.engine import connect
    from cdrapi.store.executor import StoreExecutor
    from cdrapi.web.auth import sign_in_routes
    from cdrapi.web.export import export_routes

    settings = Settings(db=db)
    engine = connect(db, create=False)
    database = StoreExecutor(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        database.close()
        engine.dispose()

    routes = [*sign_in_routes(settings, database), *export_routes(settings, database)]
    return Starlette(routes=routes, lifespan=lifespan)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(db: str) -> Iterator[tuple[str, int]]:
    """The server on loopback: (its URL, its pid)."""
    port = _free_port()
    command = [sys.executable, __file__, "--serve", db, str(port)]
    server = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{url}/login", timeout=1)
                break
            time.sleep(0.1)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(10)


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def _rss_mb(pid: int, field: str = "RssAnon") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


@contextlib.contextmanager
def sampled(pid: int) -> Iterator[list[float]]:
    """The process's anonymous RSS, sampled every 50 ms in a thread while the block runs."""
    found: list[float] = [_rss_mb(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            found.append(_rss_mb(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        done.set()
        thread.join()


def export_section(url: str, client: httpx.Client, pid: int, runs: int) -> dict[str, Any]:
    """``GET /export.csv`` of every call: records/s and the server's peak memory."""
    rates, peaks, mapped, before = [], [], [], _rss_mb(pid)
    records = 0
    for _ in range(runs):
        with contextlib.suppress(OSError):  # the peak counted from now (Linux >= 4.0)
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        started = time.perf_counter()
        lines, size = 0, 0
        with (
            sampled(pid) as memory,
            client.stream("GET", "/export.csv", timeout=600) as response,
        ):
            assert response.status_code == 200, response.status_code
            for part in response.iter_raw(1 << 20):
                lines += part.count(b"\r\n")
                size += len(part)
        seconds = time.perf_counter() - started
        records = lines - 1  # the header  (no record of the demo holds a line end)
        rates.append(records / seconds)
        peaks.append(max(memory))
        mapped.append(_peak_mb(pid))
        print(f"  export.csv: {records:,} records, {size / 1e6:,.0f} MB in {seconds:.2f} s")
    return {
        "records": records,
        "records_per_s": statistics.median(rates),
        "peak_rss_mb": max(peaks),
        "rss_before_mb": before,
        "peak_vmhwm_mb": max(mapped),
        "targets": {"records_per_s": EXPORT_RATE, "peak_rss_mb": EXPORT_MEMORY_MB},
    }


#: name -> section(url, client, pid, runs).
SECTIONS: dict[str, Callable[[str, httpx.Client, int, int], dict[str, Any]]] = {
    "export": export_section,
}


def _prepare(db: str, calls: int) -> None:
    from cdrapi.store.accounts import create_account, get_account
    from cdrapi.store.engine import connect

    path = Path(db.removeprefix("sqlite:///"))
    if not path.exists():
        subprocess.run(
            [sys.executable, "-m", "cdrapi", "demo", "--db", db, "--calls", str(calls)],
            check=True,
        )
    engine = connect(db)
    if get_account(engine, USER) is None:
        create_account(engine, USER, PASSWORD)
    engine.dispose()


def _serve(db: str, port: int) -> None:
    import uvicorn

    uvicorn.run(web_app(db), host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--db", default=f"sqlite:///{RESULTS / 'web.db'}")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--serve", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve[0], int(args.serve[1]))
        return
    RESULTS.mkdir(exist_ok=True)
    _prepare(args.db, args.calls)
    results: dict[str, Any] = {}
    with serving(args.db) as (url, pid), httpx.Client(base_url=url) as client:
        signed = client.post("/login", data={"username": USER, "password": PASSWORD})
        assert signed.status_code == 303, signed.text
        for name in args.only or SECTIONS:
            print(f"{name}:")
            results[name] = SECTIONS[name](url, client, pid, args.runs)
    if "export" in results:
        found = results["export"]
        print("\n| export.csv | records | records/s (median) | peak anonymous RSS |")
        print("|---|---:|---:|---:|")
        print(
            f"| SQLite, one worker | {found['records']:,} | {found['records_per_s']:,.0f} "
            f"(target >= {EXPORT_RATE:,}) | {found['peak_rss_mb']:.0f} MB "
            f"(target < {EXPORT_MEMORY_MB}; VmHWM with the mapped file: "
            f"{found['peak_vmhwm_mb']:.0f} MB) |"
        )
    out = RESULTS / "web_speed.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, **results}, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
