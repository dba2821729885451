"""How fast the demo generator fills a fresh SQLite store.

Builds a demo of ``--calls`` records (default 1,000,000) into a temporary SQLite file
with :func:`cdrapi.demo.generate` and prints calls per second end to end, then the split
of that run: setup, the insert phase (for big runs a producer process makes the records
while this one inserts them, so generation is inside it), and the index build
(secondary indexes, trigram search, ANALYZE and the final commit). Generation on its
own (no database, one process) is timed first for comparison (``--no-alone``: not).

The CPU seconds of each process are printed too (this one's, and the producer
process's, as the operating system counts a waited-for child): on a shared machine they
are the solid figure, and on two idle cores the run takes about the larger of the two
plus the index build.

    nice -n 19 .venv/bin/python bench/demo_speed.py [--calls N] [--days D] [--keep PATH]

The wall-clock figures depend on the machine being otherwise idle: the load average is
printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cdrapi import demo
from cdrapi.demo.records import records
from cdrapi.store import bulk
from cdrapi.store.engine import connect

marks: dict[str, float] = {}
cpu_marks: dict[str, float] = {}  # this process's CPU seconds at the same moments


def timed(module: Any, name: str, before: str, after: str) -> None:
    """Record when ``module.name`` is called and when it returns."""
    function: Callable[..., Any] = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        marks[before], cpu_marks[before] = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            marks[after], cpu_marks[after] = time.perf_counter(), time.process_time()

    setattr(module, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the database here and keep it")
    parser.add_argument("--no-alone", action="store_true", help="skip generation alone")
    args = parser.parse_args()
    end = dt.date(2024, 3, 31)
    dates = [end - dt.timedelta(days=args.days - 1 - i) for i in range(args.days)]
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    alone = alone_cpu = 0.0
    if not args.no_alone:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in records(args.seed, args.calls, dates):
            pass
        alone, alone_cpu = time.perf_counter() - started, time.process_time() - cpu

    timed(demo, "insert_call_rows", "insert", "inserted")
    timed(bulk, "create_search_index", "search", "searchable")  # as bulk_load's end calls them
    timed(bulk, "refresh", "analyze", "analyzed")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "demo.db"
        engine = connect(f"sqlite:///{path}")
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = cpu_marks["start"] = time.process_time()
        marks["start"] = time.perf_counter()
        summary = demo.generate(engine, calls=args.calls, days=args.days, seed=args.seed, end=end)
        marks["end"] = time.perf_counter()
        cpu = time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        size = path.stat().st_size
        engine.dispose()

    n = summary.calls

    def line(label: str, seconds: float, rate: bool = True) -> None:
        per_second = f"{n / seconds:10,.0f} calls/s" if rate and seconds else ""
        print(f"{label:28s}{seconds:7.2f} s {per_second}")

    print(f"calls: {n:,} over {args.days} days ({summary.start} .. {summary.end}), "
          f"{size / 1e6:,.0f} MB")  # fmt: skip
    if not args.no_alone:
        line("generation alone (no db)", alone)
        line("  its CPU", alone_cpu)
    line("generate() end to end", marks["end"] - marks["start"])
    line("  setup", marks["insert"] - marks["start"], rate=False)
    line("  insert (+ generation)", marks["inserted"] - marks["insert"])
    line("  index build, total", marks["end"] - marks["inserted"], rate=False)
    line("    secondary indexes", marks["search"] - marks["inserted"], rate=False)
    line("    trigram search", marks["searchable"] - marks["search"], rate=False)
    line("    analyze", marks["analyzed"] - marks["analyze"], rate=False)
    line("    commit, summary", marks["end"] - marks["analyzed"], rate=False)
    line("CPU: this process", cpu)
    line("  inserting (+ ordering)", cpu_marks["inserted"] - cpu_marks["insert"])
    line("  index build", cpu - (cpu_marks["inserted"] - cpu_marks["start"]), rate=False)
    line("CPU: producer process(es)", child_cpu)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
