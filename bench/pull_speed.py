"""Pull speed: 1,000,000 calls over loopback from ``cdrapi serve``, pulled by ``cdrapi pull``
into JSONL and into Parquet, side by side in the same run with the vendor's serial page loop
(``examples/vendor_client.php``, unchanged, run by php-cli).

    .venv/bin/python bench/pull_speed.py [--calls 1000000] [--workers 2] [--concurrency 4]

The demo database (built on first use, then reused: ``bench/results/pull-1m.db``) holds its
calls between 2024-01-01 and the night of 2024-01-14, so the date filter fixed in the vendor's
client (2024-01-01 00:00:00 .. 2024-01-15 23:59:59) selects every one of them, and
``cdrapi pull`` is given the same filter: both clients fetch the same records with the same
query, signed with an api_key.

Each client runs as its own process; its wall time, CPU time and peak memory (max RSS, from
GNU time) are measured, and so is the CPU the server's workers spend meanwhile. Outputs are
checked (every id once). Results are printed as a Markdown table and saved to
``bench/results/pull_speed.json``.

Server workers: 2 by default, one per CPU. The PHP loop sends one request at a time, so it
keeps one worker busy whatever their number; the pull keeps several requests in flight, and
two workers let the server use both cores. More workers than CPUs only time-slice the same
cores (``--workers 1,2,3`` shows it). A pull's connections are all accepted by whichever
worker wakes first, so they often end up on one worker.

Everything shares the 2 CPUs. Per 100-record page the server spends about 1.6 ms of CPU,
the pull about 1.0 ms (JSONL) and the PHP loop about 0.85 ms. The serial loop keeps about
one core busy; the pull can keep two busy, but it spends more CPU per page than PHP's curl
and json_decode. So on 2 cores its lead over the loop is bounded by about
2 x (1.6 + 0.85) / (1.6 + 1.0), roughly 1.9x, whatever the concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
TOKEN = "bench-token"
KEY = "bench-key"
PERIOD = ("2024-01-01 00:00:00", "2024-01-15 23:59:59")  # the vendor client's own filter
PULL = "from cdrapi.cli.pull import pull; pull()"


@dataclass
class Run:
    client: str
    output: str
    records: int
    seconds: float
    client_cpu: float
    server_cpu: float
    peak_mb: float
    load: float = 0.0  # 1-minute load average when the run started (other work on the box)
    workers: int = 0
    best: float = 0.0  # records/s of the fastest of the repeated runs

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_database(path: Path, calls: int) -> None:
    if not path.exists():
        print(f"building a {calls:,}-call demo database in {path} ...", flush=True)
        demo = [str(BIN / "cdrapi"), "demo", "--db", f"sqlite:///{path}", "--calls", str(calls)]
        demo += ["--days", "14", "--end", "2024-01-14", "--seed", "1"]
        subprocess.run(demo, check=True)
    with sqlite3.connect(path) as conn:
        (total,) = conn.execute("SELECT count(*) FROM calls").fetchone()
        (inside,) = conn.execute(
            "SELECT count(*) FROM calls WHERE time BETWEEN ? AND ?", PERIOD
        ).fetchone()
    if total != calls or inside != total:
        raise SystemExit(f"{path}: {total:,} calls, {inside:,} in the period; expected {calls:,}")


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def descendants(pid: int) -> list[int]:
    found = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found += descendants(int(child))
    return found


@contextmanager
def server(db: Path, workers: int) -> Iterator[tuple[str, list[int]]]:
    port = free_port()
    args = [str(BIN / "cdrapi"), "serve", "--db", f"sqlite:///{db}", "--port", str(port)]
    args += ["--workers", str(workers), "--no-access-log"]
    env = {**os.environ, "CDRAPI_API_TOKEN": TOKEN, "CDRAPI_API_KEY": KEY}
    env.pop("CDRAPI_CONFIG", None)
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        time.sleep(1)  # every worker up
        yield base, descendants(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def measure(
    name: str, output: str, args: list[str], stdout: Path, server_pids: list[int]
) -> tuple[Run, str]:
    """Run ``args`` to completion: wall time, its CPU and peak RSS, the server's CPU.

    Peak RSS comes from GNU time (``/usr/bin/time``, Debian package ``time``) when there is
    one: ``wait4``'s figure would count this (big) process's memory, which the child had
    before its ``exec``.
    """
    env = {**os.environ, "CDRAPI_API_TOKEN": TOKEN, "CDRAPI_API_KEY": KEY}
    stats = stdout.with_suffix(".time")
    if TIME:
        args = [TIME, "-f", "%M %U %S", "-o", str(stats), *args]
    load = os.getloadavg()[0]
    server_before = cpu_seconds(server_pids)
    with open(stdout, "wb") as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=stdout.parent)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        errors = err.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{name} failed ({process.returncode}): {errors}")
    if TIME:
        peak_kb, user, system = stats.read_text().split()[-3:]
        peak_mb, cpu = int(peak_kb) / 1024, float(user) + float(system)
    else:
        peak_mb, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    run = Run(
        client=name,
        output=output,
        records=0,
        seconds=seconds,
        client_cpu=cpu,
        server_cpu=cpu_seconds(server_pids) - server_before,
        peak_mb=peak_mb,
        load=load,
    )
    print(f"{name} -> {output}: {seconds:.1f}s", flush=True)
    return run, errors


def check_ids(ids: list[int], expected: int, what: str) -> int:
    if len(ids) != expected or len(set(ids)) != expected:
        raise SystemExit(f"{what}: {len(ids):,} records, {len(set(ids)):,} distinct ids")
    return len(ids)


def run_clients(args: argparse.Namespace, workers: int, work: Path) -> list[Run]:
    """The PHP loop and the pulls, against one server with ``workers`` workers, ``repeat``
    rounds of each in turn (so that other load on the machine hits them alike)."""
    runs: list[Run] = []
    with server(args.db, workers) as (base, pids):
        httpx.post(f"{base}/api/cdr", headers={"Authorization": f"Bearer {TOKEN}"})
        for _ in range(args.repeat):
            if not args.skip_php:
                os.environ["CDRAPI_URL"] = f"{base}/api/cdr"
                php = [shutil.which("php") or "php", str(ROOT / "examples" / "vendor_client.php")]
                run, _ = measure("vendor PHP loop", "stdout", php, work / "php.txt", pids)
                with open(work / "php.txt", "rb") as file:
                    ids = [int(line.split(b"\t", 1)[0]) for line in file]
                run.records = check_ids(ids, args.calls, "PHP")
                runs.append(run)
            for output in args.outputs.split(","):
                pull = [sys.executable, "-c", PULL, base, "-o", output, "--no-progress"]
                pull += ["--from", PERIOD[0], "--to", PERIOD[1]]
                pull += ["--concurrency", str(args.concurrency)]
                run, _ = measure("cdrapi pull", output, pull, work / "pull.txt", pids)
                path = work / output
                if output.endswith(".jsonl"):
                    with open(path, "rb") as file:
                        ids = [int(orjson.loads(line)["id"]) for line in file]
                else:
                    import pyarrow.parquet as pq

                    ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
                run.records = check_ids(ids, args.calls, output)
                runs.append(run)
                path.unlink()
    for run in runs:
        run.workers = workers
    return runs


def summary(runs: list[Run]) -> list[Run]:
    """One row per (workers, client, output): the median run by speed."""
    groups: dict[tuple[int, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.workers, run.client, run.output), []).append(run)
    rows = []
    for group in groups.values():
        ordered = sorted(group, key=lambda run: run.seconds)
        median = ordered[(len(ordered) - 1) // 2]
        median.best = ordered[0].rate
        median.peak_mb = max(run.peak_mb for run in group)
        rows.append(median)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=RESULTS / "pull-1m.db")
    parser.add_argument(
        "--workers", default="2", help="server worker processes; a list (1,2,3) compares them"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="pull's requests in flight")
    parser.add_argument("--outputs", default="calls.jsonl,calls.parquet")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each client (median)")
    parser.add_argument("--skip-php", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    ensure_database(args.db, args.calls)
    if shutil.which("php") is None and not args.skip_php:
        raise SystemExit("php-cli is needed for the vendor's loop (or pass --skip-php)")

    runs: list[Run] = []
    work = Path(tempfile.mkdtemp(prefix="pull-speed-"))
    try:
        for workers in [int(n) for n in args.workers.split(",")]:
            runs += run_clients(args, workers, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = summary(runs)
    print(f"\n{args.calls:,} calls over loopback from `cdrapi serve` (SQLite), {os.cpu_count()} "
          f"CPUs; pull: {args.concurrency} requests in flight; median of {args.repeat} "
          "run(s) each\n")  # fmt: skip
    print("| server workers | client | output | records | seconds | records/s | vs PHP | best "
          "records/s | client CPU s | server CPU s | peak memory | load |")  # fmt: skip
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    php_rates = {run.workers: run.rate for run in rows if run.client == "vendor PHP loop"}
    for run in rows:
        php_rate = php_rates.get(run.workers)
        ratio = f"{run.rate / php_rate:.2f}x" if php_rate else ""
        print(
            f"| {run.workers} | {run.client} | {run.output} | {run.records:,} | "
            f"{run.seconds:.1f} | {run.rate:,.0f} | {ratio} | {run.best:,.0f} | "
            f"{run.client_cpu:.1f} | {run.server_cpu:.1f} | {run.peak_mb:.0f} MB | "
            f"{run.load:.2f} |"
        )
    print("\ntargets: >= 3x the PHP loop, >= 20,000 records/s, peak memory < 150 MB")
    saved = {
        "calls": args.calls,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "runs": [{**asdict(run), "rate": run.rate} for run in runs],
    }
    (RESULTS / "pull_speed.json").write_text(json.dumps(saved, indent=2))


if __name__ == "__main__":
    main()
