"""How fast Asterisk CSV ingestion is, against the sqlite3 shell's ``.import`` as the floor.

Generates a deterministic ``--lines``-line (default 1,000,000) 21-column cdr_csv
``Master.csv`` (newcdrcolumns, a few non-UTF-8 caller names, unanswered calls with a bare
empty answer time), then times, on the same file, into fresh SQLite files:

- ``sqlite3 .import``: the sqlite3 command-line tool importing the raw CSV into a plain
  21-column table (no parsing of values, no derived fields, no indexes): the floor;
- ``cdrapi ingest csv``: :func:`cdrapi.ingest.ingest_csv`, every API field derived, keys
  for deduplication, checkpoints; timed when every line is stored (and in the trigram
  search, which a bulk load into an empty store fills a batch at a time), and again when
  the store's secondary indexes are built too (such a load builds them once at the end);

with the CPU seconds each took (all processes and threads: the import parses in a
producer process, SQLite sorts index keys in a helper thread);

and then the ``--follow`` latency: a server on loopback, ``cdrapi ingest csv --follow`` in
its own process, a line appended to the file, the time until ``/api/cdr`` returns that
call (``--samples`` times).

    .venv/bin/python bench/ingest_speed.py [--lines N] [--samples N] [--repeat N] [--keep DIR]

On a shared host one run's ratio swings with the host's speed (the floor itself from 6.5 to
10 s between runs); ``--repeat N`` runs the floor and the import N times, alternately, each
pair into fresh files, and also prints the median ratio of the pairs.

With ``--cel`` it runs the CEL case instead (:func:`cel_case`): ``--cel-rows`` (default
1,000,000) cel_custom rows of calls of 10 events each (an IVR menu, a queue, an agent
answering, a MixMonitor file, a blind transfer, LINKEDID_END), timed until every event
is stored and every call's fields derived (``cdrapi ingest cel``); then the calls' CDRs
ingested into a store without CEL and into the one holding it (the cost of the CEL pass
on CDR ingestion: the copy of CEL fields onto new rows).

    .venv/bin/python bench/ingest_speed.py --cel [--cel-rows N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from cdrapi.ingest import IngestRun, csvfile
from cdrapi.server.app import create_app
from cdrapi.settings import Settings
from cdrapi.store.engine import connect

NAMES = ["Ion Popescu", "Maria Ionescu", "Andrei Pop", "Elena Radu", "Mihai Stan"]
ODD = "Ana Mar\xeda"  # written as latin-1: not UTF-8


def generate(path: Path, lines: int, seed: int = 7) -> None:
    """A cdr_csv Master.csv (21 columns), a pure function of ``lines`` and ``seed``."""
    rnd = random.Random(seed)
    rand = rnd.random
    numbers = [f"07{rnd.randrange(10**8):08d}" for _ in range(20000)]
    base = 1706340000
    t = base
    chunk: list[bytes] = []
    with open(path, "wb") as out:
        for i in range(lines):
            t += int(rand() * 6)
            kind = rand()
            ext = 100 + int(rand() * 40)
            number = numbers[int(rand() * 20000)]
            answered = rand() < 0.72
            ring = 2 + int(rand() * 25)
            bill = int(rand() * 400) if answered else 0
            start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
            answer = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + ring)) if answered else ""
            end = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + ring + bill))
            status = "ANSWERED" if answered else ("NO ANSWER", "BUSY", "FAILED")[i % 3]
            uid = f"{t}.{i}"
            name = NAMES[i % 5]
            if kind < 0.5:
                src, dst, ctx = number, "0312285000", "from-pstn"
                chan, dchan = f"PJSIP/orange-{i:08x}", f"PJSIP/{ext}-{i + 1:08x}"
                clid = f'""{name if i % 97 else ODD}"" <{number}>'
            elif kind < 0.85:
                src, dst, ctx = str(ext), number, "from-internal"
                chan, dchan = f"PJSIP/{ext}-{i:08x}", f"PJSIP/orange-{i + 1:08x}"
                clid = f'""{name}"" <{ext}>'
            else:
                src, dst, ctx = str(ext), str(ext + 1), "from-internal"
                chan, dchan = f"PJSIP/{ext}-{i:08x}", f"PJSIP/{ext + 1}-{i + 1:08x}"
                clid = f'""{name}"" <{ext}>'
            answer_field = f'"{answer}"' if answer else ""
            line = (
                f'"","{src}","{dst}","{ctx}","{clid}","{chan}","{dchan}","Dial",'
                f'"{dchan.rsplit("-", 1)[0]},30,tr","{start}",{answer_field},"{end}",'
                f'{ring + bill},{bill},"{status}","DOCUMENTATION","{uid}","","","{uid}",{i % 3}\n'
            )
            data = line.encode("latin-1" if i % 97 == 0 else "utf-8")
            chunk.append(data)
            if len(chunk) >= 50000:
                out.write(b"".join(chunk))
                chunk = []
        out.write(b"".join(chunk))


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended, all threads."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def sqlite_import(csv_path: Path, db: Path) -> tuple[float, float]:
    """Seconds and CPU seconds of the sqlite3 shell's ``.import``."""
    columns = ", ".join(f"c{i} TEXT" for i in range(21))
    script = f"CREATE TABLE cdr ({columns});\n.import --csv {csv_path} cdr\n"
    started, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(["sqlite3", str(db)], input=script.encode(), check=True)
    return time.perf_counter() - started, cpu_seconds() - cpu


def cdrapi_import(csv_path: Path, db: Path) -> tuple[tuple[float, float], tuple[float, float], int]:
    """(Seconds, CPU seconds) until every line is stored, and until indexes and search
    are built; calls stored."""
    loaded: list[tuple[float, float]] = []
    run_files = csvfile.run_files

    def timed(*args: Any, **kwargs: Any) -> Any:
        try:
            return run_files(*args, **kwargs)
        finally:  # the producer process has ended: its CPU time is counted
            loaded.append((time.perf_counter(), cpu_seconds()))

    csvfile.run_files = timed  # type: ignore[assignment]
    engine = connect(f"sqlite:///{db}")
    started, cpu = time.perf_counter(), cpu_seconds()
    try:
        summary = csvfile.ingest_csv(engine, [csv_path], IngestRun(rejects=None))
    finally:
        csvfile.run_files = run_files  # type: ignore[assignment]
    done = (time.perf_counter() - started, cpu_seconds() - cpu)
    engine.dispose()
    return (loaded[0][0] - started, loaded[0][1] - cpu), done, summary.stored


def follow_latency(work: Path, samples: int) -> list[float]:
    db, master = work / "follow.db", work / "Master-follow.csv"
    master.write_bytes(b"")
    settings = Settings(db=f"sqlite:///{db}", api_token="bench")
    connect(settings.db).dispose()  # the schema, before the server and the follower
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    sock_thread = threading.Thread(target=server.run, daemon=True)
    sock_thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    code = "from cdrapi.cli.ingest import ingest; ingest()"
    follower = subprocess.Popen(
        [sys.executable, "-c", code, "csv", "--follow", "--db", settings.db, str(master)],
        stderr=subprocess.DEVNULL,
    )
    latencies = []
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer bench"}
    )
    for n in range(samples):
        uid = f"1800000000.{n}"
        line = (
            f'"","0721000000","0312285000","from-pstn","""X"" <0721000000>","PJSIP/o-00000001",'
            f'"PJSIP/100-00000002","Dial","PJSIP/100","2027-01-01 10:00:00","2027-01-01 10:00:01",'
            f'"2027-01-01 10:00:05",5,4,"ANSWERED","DOCUMENTATION","{uid}","","","{uid}",0\n'
        )
        time.sleep(0.15 + (n % 7) * 0.013)  # land at different points of the poll cycle
        with open(master, "a") as handle:
            handle.write(line)
        written = time.perf_counter()
        while True:
            body = client.get("/api/cdr", params={"filters[uniqueid]": uid}).json()
            if body["results"]:
                latencies.append(time.perf_counter() - written)
                break
            if time.perf_counter() - written > 5:
                latencies.append(float("inf"))
                break
            time.sleep(0.005)
    follower.terminate()
    follower.wait(10)
    server.should_exit = True
    sock_thread.join(5)
    return latencies


#: One call's CEL events (cel_custom's template and ${eventextra}): seconds after the call's
#: start, type, which channel (0 the caller, 1 the agent), exten, context, app, appdata, extra.
CEL_CALL = (
    (0, "CHAN_START", 0, "0312285000", "from-pstn", "", "", ""),
    (1, "APP_START", 0, "s", "ivr-main", "BackGround", "custom/main-menu", ""),
    (6, "APP_START", 0, "1", "ivr-main", "Goto", "ext-queues,400,1", ""),
    (6, "APP_START", 0, "400", "ext-queues", "Queue", "support,t", ""),
    (7, "CHAN_START", 1, "101", "from-queue", "", "", ""),
    (15, "ANSWER", 1, "101", "from-queue", "", "", ""),
    (15, "APP_START", 0, "400", "ext-queues", "MixMonitor", "{rec},b", ""),
    (
        60,
        "BLINDTRANSFER",
        1,
        "101",
        "from-queue",
        "",
        "",
        '{{"extension": "102", "context": "from-internal", "bridge_id": "b-{n}"}}',
    ),
    (60, "HANGUP", 1, "101", "from-queue", "", "", '{{"hangupcause": 16}}'),
    (90, "LINKEDID_END", 0, "102", "from-internal", "", "", ""),
)


def generate_cel(cel: Path, cdr: Path, rows: int) -> int:
    """``rows`` CEL rows (whole calls of :data:`CEL_CALL`) and the calls' CDRs (two legs
    each); return the calls."""
    calls = rows // len(CEL_CALL)
    base = 1706340000
    with open(cel, "w") as out, open(cdr, "w") as cdrs:
        for n in range(calls):
            start = base + n * 13
            uid, agent = f"{start}.{2 * n}", f"{start + 7}.{2 * n + 1}"
            chans = (f"PJSIP/trunk-{2 * n:08x}", f"PJSIP/101-{2 * n + 1:08x}")
            rec = f"2024/01/27/in-{uid}.wav"
            lines = []
            for at, kind, who, exten, context, app, data, raw in CEL_CALL:
                extra = raw.format(n=n).replace('"', '""')
                lines.append(
                    f'"{kind}","{start + at}.000000","Client","0721{n % 1000000:06d}",'
                    f'"0721{n % 1000000:06d}","","","{exten}","{context}","{chans[who]}",'
                    f'"{app}","{data.format(rec=rec)}","DOCUMENTATION","",'
                    f'"{(uid, agent)[who]}","{uid}","","","{extra}"\n'
                )
            out.write("".join(lines))
            day = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start))
            end = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + 60))
            cdrs.write(
                f'"","0721{n % 1000000:06d}","400","ext-queues","Client","{chans[0]}",'
                f'"{chans[1]}","Queue","support,t","{day}","{day}","{end}",60,45,"ANSWERED",'
                f'"DOCUMENTATION","{uid}","","","{uid}",1\n'
            )
    return calls


def cel_case(work: Path, rows: int) -> None:
    """The CEL case: ``rows`` events stored and applied, then the CDRs with and without."""
    from cdrapi.ingest.cel_file import ingest_cel

    cel, cdr = work / "cel-Master.csv", work / "cdr-Master.csv"
    calls = generate_cel(cel, cdr, rows)
    rows = calls * len(CEL_CALL)
    print(f"generated {rows:,} CEL rows of {calls:,} calls ({cel.stat().st_size / 1e6:.0f} MB); "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    results = []
    with_cel = connect(f"sqlite:///{work / 'cel.db'}")
    started, cpu, child = time.perf_counter(), cpu_seconds(), _children_cpu()
    summary = ingest_cel(with_cel, [cel], IngestRun(rejects=None))
    took = (time.perf_counter() - started, cpu_seconds() - cpu)
    parser = _children_cpu() - child  # the producer process that parsed the file
    writer = took[1] - parser
    assert summary.lines == rows and summary.rejected == 0, summary
    results.append(("`cdrapi ingest cel`: every event stored, every call derived", rows, took))
    for name, engine in (
        ("`cdrapi ingest csv` of the calls' CDRs, no CEL in the store", None),
        ("`cdrapi ingest csv` of the same CDRs, the CEL stored first", with_cel),
    ):
        engine = engine or connect(f"sqlite:///{work / 'plain.db'}")
        started, cpu = time.perf_counter(), cpu_seconds()
        done = csvfile.ingest_csv(engine, [cdr], IngestRun(rejects=None))
        took = (time.perf_counter() - started, cpu_seconds() - cpu)
        assert done.stored == calls, done
        results.append((name, calls, took))
    with with_cel.connect() as conn:
        from sqlalchemy import text

        filled = conn.execute(
            text(
                "SELECT count(*) FROM calls WHERE ivr_log IS NOT NULL AND transfers IS NOT NULL "
                "AND monitor_files IS NOT NULL AND ring_time = 8"
            )
        ).scalar()
    assert filled == calls, f"{filled:,} of {calls:,} calls got their CEL fields"
    print()
    print("| run | seconds | rows/s | CPU seconds |")
    print("| --- | ---: | ---: | ---: |")
    for name, count, (seconds, cpu) in results:
        print(f"| {name} | {seconds:.2f} | {count / seconds:,.0f} | {cpu:.2f} |")
    print(
        f"\n`ingest cel`'s CPU seconds: {writer:.2f} in the writing process, "
        f"{parser:.2f} in the parsing one (on two idle cores it takes about the larger)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores, shared)")


def _children_cpu() -> float:
    """CPU seconds of this process's children that have ended."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument(
        "--repeat", type=int, default=1, help="Floor and import pairs (median ratio)."
    )
    parser.add_argument("--keep", type=Path, default=None, help="Work in DIR and keep it.")
    parser.add_argument("--cel", action="store_true", help="Run the CEL case instead.")
    parser.add_argument("--cel-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.cel:
        work = args.keep or Path(tempfile.mkdtemp(prefix="cdrapi-bench-cel-"))
        work.mkdir(parents=True, exist_ok=True)
        try:
            cel_case(work, args.cel_rows)
        finally:
            if args.keep is None:
                shutil.rmtree(work, ignore_errors=True)
        return
    if shutil.which("sqlite3") is None:
        sys.exit("the sqlite3 command-line tool is needed (Debian: apt-get install sqlite3)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="cdrapi-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        master = work / "Master.csv"
        started = time.perf_counter()
        generate(master, args.lines)
        size = master.stat().st_size
        took = time.perf_counter() - started
        load = os.getloadavg()[0]
        print(
            f"generated {args.lines:,} lines ({size / 1e6:.0f} MB) in {took:.1f}s; load {load:.2f}"
        )
        ratios = []
        for pair in range(max(1, args.repeat)):
            for name in ("import.db", "cdrapi.db"):
                for suffix in ("", "-wal", "-shm"):
                    (work / (name + suffix)).unlink(missing_ok=True)
            floor = sqlite_import(master, work / "import.db")
            loaded, ours, stored = cdrapi_import(master, work / "cdrapi.db")
            assert stored == args.lines, f"stored {stored:,} of {args.lines:,}"
            ratios.append(floor[0] / loaded[0])
            if args.repeat > 1:
                print(
                    f"pair {pair + 1}: .import {floor[0]:.2f} s, stored {loaded[0]:.2f} s, "
                    f"ratio {ratios[-1]:.3f}, CPU {loaded[1]:.2f} s"
                )
        if args.repeat > 1:
            print(f"median ratio of {len(ratios)} pairs: {statistics.median(ratios):.3f}")
        load = os.getloadavg()[0]
        latencies = follow_latency(work, args.samples)
        print()
        print("| run | seconds | lines/s | CPU seconds |")
        print("| --- | ---: | ---: | ---: |")
        for name, (seconds, cpu) in (
            ("sqlite3 `.import` (floor: raw text, no indexes)", floor),
            ("`cdrapi ingest csv`: every line parsed, derived, stored, searchable", loaded),
            ("`cdrapi ingest csv`, until the indexes are built too", ours),
        ):
            print(f"| {name} | {seconds:.2f} | {args.lines / seconds:,.0f} | {cpu:.2f} |")
        print(f"\nload average after the imports: {load:.2f} (2 cores, shared)")
        print()
        ms = sorted(value * 1000 for value in latencies)
        p95 = ms[max(0, int(len(ms) * 0.95) - 1)]
        print(
            f"--follow latency, line appended -> record returned by /api/cdr ({len(ms)} "
            f"samples): median {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, "
            f"max {ms[-1]:.0f} ms"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
