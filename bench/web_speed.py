"""The web call log's speed (issue 11): a demo database served by uvicorn on loopback, one
worker, SQLite; medians of the runs. One section per page, each a function of
:data:`SECTIONS` taking the server's URL, a signed-in client, the server's pid and the
number of runs.

    python bench/web_speed.py [--calls 1000000] [--db bench/results/web.db] [--runs 3]
                              [--only calllog --only dashboard ...]

The demo (made once, if the file is missing) spans 365 days up to today; the periods
measured end at its last call's day. Each page's time is the request's, on loopback
(the server's work plus a fraction of a millisecond), and the server process's CPU time
for it (``/proc/PID/stat``, in clock ticks: 10 ms steps): on a shared machine the
wall time also counts the other processes' turns.

- ``calllog``: ``GET /`` of the last 30 days, grouped by call: the first page (the first
  run also counts the search's calls; the counts are then cached per store version).
- ``callview``: ``GET /calls/{linkedid}`` of calls of the last 30 days, one per run.
- ``dashboard``: ``GET /dashboard`` of the last 30 days and of the last 365: the first
  run reads every day, the next ones the figures kept for the store's version; then
  runs each after a write to the last day (a leg updated: that day is read again).

- ``export``: ``GET /export.csv`` of every call (43 fields), in a server of its own started
  for it (nothing served before it but the sign-in): records per second (and per second
  of the server's CPU time, all its threads: what a loaded machine does not change; the
  client's CPU time is given too, as it shares the machine), and the server process's
  peak memory while it streams them: its own (anonymous) resident memory, ``RssAnon`` of
  /proc/PID/status sampled every 20 ms, and ``VmHWM`` (reset before each run through
  /proc/PID/clear_refs), which also counts the pages of the database file SQLite maps
  (``mmap_size``, up to 1 GiB: the kernel's page cache, shared and given back under
  pressure, not the export's memory).

The server is this file run with ``--serve DB PORT``: every web route
(:func:`cdrapi.web.app.web_routes`). Results are printed as Markdown tables and saved to
bench/results/web_speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

HERE = Path(__file__).parent
RESULTS = HERE / "results"
USER, PASSWORD = "bench", "bench-password-1"

#: Issue 11's targets.
EXPORT_RATE = 100_000  # records/s at least
EXPORT_MEMORY_MB = 100  # peak RSS under
PAGE_TARGETS_MS = {"calllog": 50, "callview": 20, "dashboard 30 days": 300,
                   "dashboard 30 days, after a write": 300, "dashboard 365 days": 1000,
                   "dashboard 365 days, after a write": 1000}  # fmt: skip
DEMO_DAYS = 365


def web_app(db: str) -> Any:
    """The web routes the sections measure, on ``db``."""
    from starlette.applications import Starlette

    from cdrapi.settings import Settings
    from cdrapi.store.engine import connect
    from cdrapi.store.executor import StoreExecutor
    from cdrapi.web.app import web_routes
    from cdrapi.web.dashboard import dashboard_warmup

    settings = Settings(db=db)
    engine = connect(db, create=False)
    database = StoreExecutor(engine)
    routes = web_routes(settings, engine, database, lambda path: None)
    # as cdrapi serve's: the dashboard's first periods counted in the background
    warmup = dashboard_warmup(routes) if os.environ.get("BENCH_WARM_UP") == "1" else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if warmup is not None:
            warmup.start()
        yield
        if warmup is not None:
            warmup.stop()
        database.close()
        engine.dispose()

    return Starlette(routes=routes, lifespan=lifespan)


def _warmed_up(db: str, pid: int) -> None:
    """Wait for the server's warm-up: the year's days saved for the unscoped search, then
    the server's CPU time still for a second (its last figures made); print its CPU."""
    started, cpu = time.perf_counter(), _cpu_ms(pid)
    path = db.removeprefix("sqlite:///")
    while True:
        with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(path) as conn:
            query = "SELECT count(*) FROM dashboard_days WHERE search = 'calls'"
            if conn.execute(query).fetchone()[0] >= 365:
                break
        time.sleep(0.2)
    while True:
        before = _cpu_ms(pid)
        time.sleep(1.0)
        if _cpu_ms(pid) - before < 20:
            break
    print(f"  warm-up: {time.perf_counter() - started - 1:.1f} s, server CPU "
          f"{(_cpu_ms(pid) - cpu) / 1000:.1f} s")  # fmt: skip


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
    """The process's anonymous RSS, sampled every 20 ms in a thread while the block runs."""
    found: list[float] = [_rss_mb(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            found.append(_rss_mb(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        done.set()
        thread.join()


def export_section(db: str, client: httpx.Client, pid: int, runs: int) -> dict[str, Any]:
    """``GET /export.csv`` of every call: records/s and the server's peak memory."""
    rates, cpu_rates, client_cpus, peaks, mapped = [], [], [], [], []
    before = _rss_mb(pid)
    records = 0
    for _ in range(runs):
        with contextlib.suppress(OSError):  # the peak counted from now (Linux >= 4.0)
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        started, cpu, mine = time.perf_counter(), _cpu_ms(pid), time.process_time()
        with sampled(pid) as memory:
            lines, size = _download(client, "/export.csv")
        seconds, cpu_seconds = time.perf_counter() - started, (_cpu_ms(pid) - cpu) / 1000
        client_cpus.append(time.process_time() - mine)
        records = lines - 1  # the header  (no record of the demo holds a line end)
        rates.append(records / seconds)
        cpu_rates.append(records / cpu_seconds)
        peaks.append(max(memory))
        mapped.append(_peak_mb(pid))
        print(
            f"  export.csv: {records:,} records, {size / 1e6:,.0f} MB in {seconds:.2f} s "
            f"(server CPU {cpu_seconds:.2f} s, client CPU {client_cpus[-1]:.2f} s, "
            f"peak anonymous RSS {peaks[-1]:.0f} MB, VmHWM {mapped[-1]:.0f} MB)"
        )
    return {
        "records": records,
        "records_per_s": statistics.median(rates),
        "best_records_per_s": max(rates),
        "records_per_server_cpu_s": statistics.median(cpu_rates),
        "client_cpu_s": statistics.median(client_cpus),
        "peak_rss_mb": max(peaks),
        "rss_before_mb": before,
        "peak_vmhwm_mb": max(mapped),
        "fresh_server": True,
        "targets": {"records_per_s": EXPORT_RATE, "peak_rss_mb": EXPORT_MEMORY_MB},
    }


def _download(client: httpx.Client, path: str) -> tuple[int, int]:
    """``GET path`` with ``client``'s cookies, read whole: (its CRLFs, its bytes). Read with
    http.client into one buffer, not httpx: a third of the CPU time (httpx's chunked
    decoding copies each part), which the server would otherwise share two cores with."""
    cookies = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    conn = http.client.HTTPConnection(client.base_url.host, client.base_url.port, timeout=600)
    try:
        conn.request("GET", path, headers={"Cookie": cookies})
        response = conn.getresponse()
        assert response.status == 200, (response.status, response.read(300))
        buffer, lines, size = bytearray(1 << 20), 0, 0
        carried = False  # the last part ended in CR: a CRLF may be split
        while got := response.readinto(buffer):
            lines += buffer.count(b"\r\n", 0, got) + (carried and buffer[0] == 10)
            carried = buffer[got - 1] == 13
            size += got
    finally:
        conn.close()
    return lines, size


def _cpu_ms(pid: int) -> float:
    """The process's user + system CPU time so far, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _timed(client: httpx.Client, pid: int, path: str, params: Any = None) -> tuple[float, float]:
    """One ``GET``: its time and the server's CPU time for it, in ms."""
    cpu, started = _cpu_ms(pid), time.perf_counter()
    answer = client.get(path, params=params, timeout=600)
    wall = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return wall, _cpu_ms(pid) - cpu


def _last_day(db: str) -> dt.date:
    """The demo's last day: the periods measured end there."""
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        (last,) = conn.execute("SELECT max(time) FROM calls").fetchone()
    return dt.date.fromisoformat(last[:10])


def _period(db: str, days: int) -> dict[str, str]:
    end = _last_day(db)
    return {"from": str(end - dt.timedelta(days=days - 1)), "to": str(end)}


def _summary(times: list[tuple[float, float]], **more: Any) -> dict[str, Any]:
    walls, cpus = [wall for wall, _ in times], [cpu for _, cpu in times]
    return {
        "median_ms": statistics.median(walls),
        "first_ms": walls[0],
        "best_ms": min(walls),
        "cpu_median_ms": statistics.median(cpus),
        "runs": len(times),
        **more,
    }


def calllog_section(db: str, client: httpx.Client, pid: int, runs: int) -> dict[str, Any]:
    """The call log's first page of the last 30 days, grouped by call."""
    period = _period(db, 30)
    times = [_timed(client, pid, "/", period) for _ in range(max(runs, 10))]
    page = client.get("/", params=period, timeout=600).text
    found = re.search(r'id="call-count">([\d,]+)<', page)
    calls = int(found[1].replace(",", "")) if found else 0
    print(f"  /?from={period['from']}&to={period['to']}: {calls:,} calls, "
          f"median {statistics.median(t for t, _ in times):.1f} ms")  # fmt: skip
    return {"calllog": _summary(times, calls=calls, **period)}


def callview_section(db: str, client: httpx.Client, pid: int, runs: int) -> dict[str, Any]:
    """The call view of calls of the last 30 days (a different call each run)."""
    period = _period(db, 30)
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        keys = [key for (key,) in conn.execute(
            "SELECT linkedid FROM calls WHERE time >= ? AND linkedid <> '' "
            "ORDER BY id LIMIT ?", (period["from"], max(runs, 20)),
        )]  # fmt: skip
    times = [_timed(client, pid, f"/calls/{quote(key, safe='')}") for key in keys]
    print(f"  /calls/...: median {statistics.median(t for t, _ in times):.1f} ms")
    return {"callview": _summary(times)}


def _write_last_day(db: str) -> None:
    """A write as ingestion's: a leg of the last day updated, the store's version bumped
    (the dashboard then reads that day again, and only that day)."""
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE calls SET billsec = billsec WHERE id = (SELECT max(id) FROM calls)")
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")


def dashboard_section(db: str, client: httpx.Client, pid: int, runs: int) -> dict[str, Any]:
    """The dashboard of the last 30 days and of the last 365: the first view after the
    server started (every day read), views again (the figures kept per store version),
    and views after a write to the last day (that day read again)."""
    found: dict[str, Any] = {}
    for days in (30, 365):
        period = _period(db, days)
        times = [_timed(client, pid, "/dashboard", period) for _ in range(runs)]
        written = []
        for _ in range(runs):
            _write_last_day(db)
            written.append(_timed(client, pid, "/dashboard", period))
        print(f"  /dashboard {days} days after a write to the last day: median "
              f"{statistics.median(t for t, _ in written):.0f} ms")  # fmt: skip
        found[f"dashboard {days} days, after a write"] = _summary(written, **period)
        page = client.get("/dashboard", params=period, timeout=600).text
        shown = re.search(r'id="fig-calls">([\d,]+)<', page)
        calls = int(shown[1].replace(",", "")) if shown else 0
        print(f"  /dashboard {days} days: {calls:,} calls, "
              f"median {statistics.median(t for t, _ in times):.0f} ms")  # fmt: skip
        found[f"dashboard {days} days"] = _summary(times, calls=calls, **period)
    return found


def _export(db: str, client: httpx.Client, pid: int, runs: int) -> dict[str, Any]:
    return {"export": export_section(db, client, pid, runs)}


#: name -> section(db, client, pid, runs): its results by page.
SECTIONS: dict[str, Callable[[str, httpx.Client, int, int], dict[str, Any]]] = {
    "calllog": calllog_section,
    "callview": callview_section,
    "dashboard": dashboard_section,
    "export": _export,
}


def _prepare(db: str, calls: int) -> None:
    from cdrapi.store.accounts import create_account, get_account
    from cdrapi.store.engine import connect

    path = Path(db.removeprefix("sqlite:///"))
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cdrapi",
                "demo",
                "--db",
                db,
                "--calls",
                str(calls),
                "--days",
                str(DEMO_DAYS),
            ],
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
    parser.add_argument(
        "--warm-up",
        action="store_true",
        help="time the pages after the server's dashboard warm-up (as cdrapi serve's)",
    )
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve[0], int(args.serve[1]))
        return
    RESULTS.mkdir(exist_ok=True)
    _prepare(args.db, args.calls)
    results: dict[str, Any] = {}
    chosen = args.only or list(SECTIONS)
    # The export first, in a server of its own: its memory is the export's, not what
    # the pages before it left (the dashboard's figures, the call log's counts).
    groups = [[name for name in chosen if name == "export"]]
    groups.append([name for name in chosen if name != "export"])
    for group in filter(None, groups):
        # the server's (a process of this file) warm-up: for the dashboard's group only
        os.environ["BENCH_WARM_UP"] = "1" if args.warm_up and "dashboard" in group else "0"
        with serving(args.db) as (url, pid), httpx.Client(base_url=url) as client:
            signed = client.post("/login", data={"username": USER, "password": PASSWORD})
            assert signed.status_code == 303, signed.text
            if args.warm_up and "dashboard" in group:
                _warmed_up(args.db, pid)
            for name in group:
                print(f"{name}:")
                results.update(SECTIONS[name](args.db, client, pid, args.runs))
    pages = [name for name in PAGE_TARGETS_MS if name in results]
    if pages:
        print("\n| page (SQLite, one worker) | calls | median | first run | server CPU | target |")
        print("|---|---:|---:|---:|---:|---:|")
        for name in pages:
            found = results[name]
            calls = f"{found['calls']:,}" if "calls" in found else ""
            print(
                f"| {name} | {calls} | {found['median_ms']:.1f} ms | {found['first_ms']:.1f} ms "
                f"| {found['cpu_median_ms']:.0f} ms | < {PAGE_TARGETS_MS[name]} ms |"
            )
    if "export" in results:
        found = results["export"]
        print(
            "\n| export.csv (fresh server) | records | records/s (median) | per server CPU "
            "second | peak anonymous RSS | VmHWM (with the mapped file) |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        print(
            f"| SQLite, one worker | {found['records']:,} | {found['records_per_s']:,.0f} "
            f"(target >= {EXPORT_RATE:,}) | {found['records_per_server_cpu_s']:,.0f} "
            f"| {found['peak_rss_mb']:.0f} MB (target < {EXPORT_MEMORY_MB}; "
            f"{found['rss_before_mb']:.0f} MB before) | {found['peak_vmhwm_mb']:.0f} MB |"
        )
    out = RESULTS / "web_speed.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, **results}, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
