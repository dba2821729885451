"""API speed on a 1,000,000-call demo database, over HTTP on one worker, side by side with
Datasette serving the same SQLite file and with the raw-SQL floor of the same queries.

    python bench/api_speed.py [--calls 1000000] [--db bench/results/bench.db]

Datasette runs from its own virtual environment (``bench/.venv-datasette``, created on first
use); requests per second are measured with ``wrk`` (Debian package ``wrk``) for both
servers. Results are printed as a Markdown table and saved to bench/results/api_speed.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cdrapi import http_build_query

HERE = Path(__file__).parent
RESULTS = HERE / "results"
TOKEN = "bench-token"
DATASETTE_VENV = HERE / ".venv-datasette"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(args: list[str], health: str, env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(health)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def ms_median(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(call: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def windows(db: Path, count: int, days: int = 15) -> list[tuple[str, str]]:
    """Distinct 15-day windows inside the data (distinct so no count is ever reused)."""
    with sqlite3.connect(db) as conn:
        first, last = conn.execute("SELECT min(time), max(time) FROM calls").fetchone()
    start = time.mktime(time.strptime(first, "%Y-%m-%d %H:%M:%S"))
    end = time.mktime(time.strptime(last, "%Y-%m-%d %H:%M:%S")) - days * 86400
    rng = random.Random(5)
    out = []
    for _ in range(count):
        lo = rng.uniform(start, max(start, end))
        hi = lo + days * 86400 - 1
        out.append(
            (
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lo)),
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(hi)),
            )
        )
    return out


def six_digit_searches(db: Path, count: int) -> list[str]:
    """6-digit substrings of real numbers in the table (so searches find something)."""
    rng = random.Random(6)
    with sqlite3.connect(db) as conn:
        (top,) = conn.execute("SELECT max(id) FROM calls").fetchone()
        values = []
        while len(values) < count:
            row = conn.execute(
                "SELECT source, destination FROM calls WHERE id = ?", (rng.randint(1, top),)
            ).fetchone()
            number = max(row or ("", ""), key=len)
            if len(number) >= 8 and number.isdigit():
                at = rng.randrange(len(number) - 5)
                values.append(number[at : at + 6])
    return values


def api_request(client: httpx.Client, filters: dict[str, Any], page: int = 1) -> dict[str, Any]:
    response = client.post("/api/cdr", json={"page": page, "filters": filters})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def raw_page(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> None:
    conn.execute(f"SELECT count(*) FROM calls WHERE {where}", args).fetchone()
    conn.execute(f"SELECT * FROM calls WHERE {where} ORDER BY id LIMIT 100", args).fetchall()


FTS_WHERE = (
    "id IN (SELECT rowid FROM calls_numbers WHERE calls_numbers MATCH ?) "
    "AND (source LIKE ? OR destination LIKE ?)"
)


def wrk(url: str, headers: dict[str, str], seconds: int, script: Path | None = None) -> float:
    args = ["wrk", "-t1", "-c8", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        args += ["-s", str(script)]
    output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses from {url}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def varying_paths_script(paths: list[str]) -> Path:
    """A wrk Lua script that cycles through distinct request paths (no cache reuse)."""
    script = RESULTS / "paths.lua"
    quoted = ",\n".join(json.dumps(p) for p in paths)
    script.write_text(
        "local paths = {\n" + quoted + "\n}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n"
        "  return wrk.format(nil, paths[i])\nend\n"
    )
    return script


def ensure_datasette() -> Path:
    binary = DATASETTE_VENV / "bin" / "datasette"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DATASETTE_VENV)], check=True)
        subprocess.run(
            [str(DATASETTE_VENV / "bin" / "pip"), "install", "-q", "datasette"], check=True
        )
    return binary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--db", type=Path, default=RESULTS / "bench.db")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results: dict[str, Any] = {}

    if not args.db.exists():
        from cdrapi.demo import generate
        from cdrapi.store.engine import connect

        started = time.perf_counter()
        generate(
            connect(f"sqlite:///{args.db}"),
            calls=args.calls,
            days=args.days,
            seed=1,
            end=dt.date(2026, 10, 31),
        )
        results["demo_seconds"] = time.perf_counter() - started
        print(f"demo: {args.calls:,} calls in {results['demo_seconds']:.1f}s", flush=True)

    with sqlite3.connect(args.db) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM calls").fetchone()
    results["rows"] = rows
    spans = windows(args.db, args.samples)
    searches = six_digit_searches(args.db, args.samples)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [
        str(Path(sys.executable).parent / "cdrapi"),
        "serve",
        "--db",
        f"sqlite:///{args.db}",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
    ]
    with (
        process(serve, f"{base}/healthz", {"CDRAPI_API_TOKEN": TOKEN}),
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        ) as client,
    ):
        api_request(client, {})  # warm up
        it = iter(spans)
        date_samples = timed(
            lambda: api_request(client, {"date_between": list(next(it))}), len(spans)
        )
        fixed = list(spans[0])
        warm = timed(lambda: api_request(client, {"date_between": fixed}), len(spans))
        it_s = iter(searches)
        like_samples = timed(
            lambda: api_request(client, {"telephone_like": next(it_s)}), len(searches)
        )
        body = api_request(client, {})
        max_page = body["pagination"]["max_page"]
        crawl: list[float] = []
        seen = 0
        started = time.perf_counter()
        for page in range(1, max_page + 1):
            t0 = time.perf_counter()
            seen += len(api_request(client, {}, page)["results"])
            crawl.append(time.perf_counter() - t0)
        crawl_total = time.perf_counter() - started
        assert seen == rows, (seen, rows)

        date_path = "/api/cdr?" + http_build_query({"page": 1, "filters": {"date_between": fixed}})
        rps_api = wrk(base + date_path, {"Authorization": f"Bearer {TOKEN}"}, args.seconds)
        script = varying_paths_script(
            [
                "/api/cdr?" + http_build_query({"page": 1, "filters": {"date_between": list(s)}})
                for s in spans
            ]
        )
        rps_api_cold = wrk(
            base + date_path, {"Authorization": f"Bearer {TOKEN}"}, args.seconds, script
        )

    # Datasette on the same file, same query: time range, 100 rows, count included.
    datasette = ensure_datasette()
    ds_port = free_port()
    ds_base = f"http://127.0.0.1:{ds_port}"
    name = args.db.stem

    def ds_path(span: tuple[str, str] | list[str]) -> str:
        query = httpx.QueryParams({"time__gte": span[0], "time__lte": span[1], "_size": "100"})
        return f"/{name}/calls.json?{query}"

    ds_cmd = [
        str(datasette),
        "serve",
        "--immutable",
        str(args.db),
        "--port",
        str(ds_port),
        "--setting",
        "sql_time_limit_ms",
        "10000",
        "--setting",
        "suggest_facets",
        "off",
    ]
    with (
        process(ds_cmd, f"{ds_base}/-/versions.json"),
        httpx.Client(base_url=ds_base, timeout=60) as ds,
    ):
        sample = ds.get(ds_path(fixed)).json()
        assert sample.get("filtered_table_rows_count") is not None, list(sample)
        assert len(sample["rows"]) == 100
        it_d = iter(spans)
        ds_samples = timed(lambda: ds.get(ds_path(next(it_d))).raise_for_status(), len(spans))
        rps_ds = wrk(ds_base + ds_path(fixed), {}, args.seconds)
        ds_script = varying_paths_script([ds_path(s) for s in spans])
        rps_ds_cold = wrk(ds_base + ds_path(fixed), {}, args.seconds, ds_script)

    # The raw-SQL floor: the same queries, straight on the file, no HTTP and no JSON.
    conn = sqlite3.connect(args.db)
    it_r = iter(spans)
    raw_date = timed(lambda: raw_page(conn, "time >= ? AND time <= ?", next(it_r)), len(spans))
    it_rl = iter(searches)

    def raw_like() -> None:
        value = next(it_rl)
        raw_page(conn, FTS_WHERE, (f'"{value}"', f"%{value}%", f"%{value}%"))

    raw_search = timed(raw_like, len(searches))
    raw_crawl = []
    last_id = 0
    for _ in range(max_page):
        t0 = time.perf_counter()
        page_rows = conn.execute(
            "SELECT * FROM calls WHERE id > ? ORDER BY id LIMIT 100", (last_id,)
        ).fetchall()
        raw_crawl.append(time.perf_counter() - t0)
        last_id = page_rows[-1][0] if page_rows else last_id

    first100, last100 = ms_median(crawl[:100]), ms_median(crawl[-100:])
    results.update(
        date_between_ms=ms_median(date_samples),
        date_between_repeat_ms=ms_median(warm),
        datasette_date_between_ms=ms_median(ds_samples),
        raw_date_between_ms=ms_median(raw_date),
        telephone_like_ms=ms_median(like_samples),
        raw_telephone_like_ms=ms_median(raw_search),
        crawl_first100_ms=first100,
        crawl_last100_ms=last100,
        crawl_ratio=last100 / first100,
        crawl_total_s=crawl_total,
        crawl_pages=max_page,
        raw_crawl_first100_ms=ms_median(raw_crawl[:100]),
        raw_crawl_last100_ms=ms_median(raw_crawl[-100:]),
        rps_api_same=rps_api,
        rps_datasette_same=rps_ds,
        rps_api_distinct=rps_api_cold,
        rps_datasette_distinct=rps_ds_cold,
    )
    (RESULTS / "api_speed.json").write_text(json.dumps(results, indent=2))

    r = results
    print(f"\n{rows:,} calls, SQLite, one worker; medians of {args.samples} requests\n")
    print("| measure | cdrapi (HTTP) | raw SQL floor | Datasette (HTTP) | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    print(
        f"| first page, date_between 15 days (distinct windows) | "
        f"{r['date_between_ms']:.2f} ms | {r['raw_date_between_ms']:.2f} ms | "
        f"{r['datasette_date_between_ms']:.2f} ms | < 15 ms |"
    )
    print(f"| same, repeated window (count reused) | {r['date_between_repeat_ms']:.2f} ms | | | |")
    print(
        f"| telephone_like, 6 digits, whole table | {r['telephone_like_ms']:.2f} ms | "
        f"{r['raw_telephone_like_ms']:.2f} ms | | < 50 ms |"
    )
    print(
        f"| crawl page += 1, first 100 pages | {first100:.2f} ms | "
        f"{r['raw_crawl_first100_ms']:.2f} ms | | |"
    )
    print(
        f"| crawl page += 1, last 100 pages (of {max_page:,}) | {last100:.2f} ms | "
        f"{r['raw_crawl_last100_ms']:.2f} ms | | <= 1.5x first |"
    )
    print(f"| crawl ratio last/first | {r['crawl_ratio']:.2f}x | | | <= 1.5x |")
    print(
        f"| requests/s, date_between, same window | {rps_api:,.0f} | | {rps_ds:,.0f} | "
        f">= 2x Datasette ({rps_api / rps_ds:.1f}x) |"
    )
    print(
        f"| requests/s, date_between, distinct windows | {rps_api_cold:,.0f} | | "
        f"{rps_ds_cold:,.0f} | ({rps_api_cold / rps_ds_cold:.1f}x) |"
    )
    print(f"\nfull crawl: {max_page:,} pages in {crawl_total:.1f}s")
    if shutil.which("wrk") is None:
        print("wrk not found")


if __name__ == "__main__":
    main()
