"""``cdrapi ingest``: Asterisk call records into the store.

cdrapi ingest csv /var/log/asterisk/cdr-csv/Master.csv --follow
cdrapi ingest db mysql://freepbx:secret@localhost/asteriskcdrdb --follow
cdrapi ingest queue-log /var/log/asterisk/queue_log --follow
cdrapi ingest queue-log --db-url mysql://freepbx:secret@localhost/asteriskcdrdb --table queuelog
cdrapi ingest cel /var/log/asterisk/cel-custom/Master.csv --follow
cdrapi ingest cel mysql://freepbx:secret@localhost/asteriskcdrdb --table cel --follow
cdrapi ingest rederive --config cdrapi.toml
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
import tomllib
from collections.abc import Callable
from typing import Any

import click

from cdrapi.cli.common import clean_errors, config_option, db_option, parse_duration
from cdrapi.cli.settings import STORE_ERRORS, settings
from cdrapi.ingest import (
    IngestError,
    IngestRun,
    Reject,
    ingest_csv,
    ingest_db,
    ingest_queue_log,
    load_directory,
    rederive,
)
from cdrapi.ingest.directory import DIRECTORY_KEYS
from cdrapi.ingest.summary import Summary
from cdrapi.store.engine import connect

__all__ = ["ingest"]

rejects_option = click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    default="cdrapi-rejects.txt",
    show_default=True,
    help="File that receives every line that could not be imported, as it was.",
)
follow_option = click.option(
    "--follow", "-f", is_flag=True, help="Keep reading new calls as they are written."
)
from_start_option = click.option(
    "--from-start", is_flag=True, help="Read from the beginning, ignoring the saved checkpoint."
)

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _lookback(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    try:
        return dt.timedelta(seconds=parse_duration(value))
    except ValueError:
        raise click.BadParameter("expected a duration such as 90m, 3h or 1d") from None


def lookback_option(default: str, help: str) -> Decorator:
    """``--lookback``: how far behind the latest row a table's poll reads again."""
    return click.option(
        "--lookback", default=default, show_default=True, callback=_lookback, help=help
    )


def gmt_option(help: str) -> Decorator:
    """``--gmt``: the source's times are UTC (``help`` names the PBX's setting)."""
    return click.option("--gmt", is_flag=True, help=help)


interval_option = click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between polls of a database table with --follow.",
)


def event_table_options(gmt_setting: str) -> Decorator:
    """``--lookback``, ``--interval`` and ``--gmt`` of a command that reads an event
    table (queue_log, cel; see :mod:`cdrapi.ingest.event_table`)."""
    lookback = lookback_option(
        "10m", "With a database table: how far behind the latest event each poll looks again."
    )
    gmt = gmt_option(f"With a database table: its times are UTC ({gmt_setting}).")

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        return lookback(interval_option(gmt(command)))

    return apply


#: Rejected lines shown on stderr in a run; the rest are only counted (and in the file).
SHOWN_REJECTS = 20


def _max_rejects(ctx: click.Context, param: click.Parameter, value: str) -> float:
    text = value.strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise click.BadParameter("expected a share of the lines, such as 1%, 0.5% or 0.02")
    return share


max_rejects_option = click.option(
    "--max-rejects",
    default="1%",
    show_default=True,
    callback=_max_rejects,
    help="Exit non-zero when more than this share of the lines is rejected.",
)


def _options(config: str | None, db: str | None, rejects: str | None, from_start: bool) -> Any:
    chosen = settings(config, db=db)
    path = config or os.environ.get("CDRAPI_CONFIG")
    directory = None
    with clean_errors(*STORE_ERRORS, IngestError):
        if path:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
            if any(key in data for key in DIRECTORY_KEYS):
                directory = load_directory(path)
        engine = connect(chosen.db)
    shown = [0]

    def report(reject: Reject) -> None:
        shown[0] += 1
        if shown[0] <= SHOWN_REJECTS:
            click.echo(f"rejected {reject}", err=True)

    stop = threading.Event()
    options = IngestRun(chosen, directory, rejects, report, from_start=from_start, stop=stop)
    return engine, options


def _run(
    options: IngestRun, follow: bool, work: Callable[[], Summary], max_rejects: float = 1.0
) -> None:
    """Run ``work`` and end with its summary line; exit non-zero when it failed (see
    :meth:`Summary.failed`). When following, report each batch and stop cleanly on a
    signal. Warnings are shown as they come."""
    options.progress = _progress(follow)
    if follow:

        def stop(signum: int, frame: Any) -> None:
            assert options.stop is not None
            options.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    with clean_errors(*STORE_ERRORS, IngestError):
        summary = work()
    if summary.rejected > SHOWN_REJECTS:
        click.echo(f"... and {summary.rejected - SHOWN_REJECTS:,} more rejected", err=True)
    if summary.directions:
        signs = sorted(summary.directions.items(), key=lambda item: (-item[1], item[0]))
        text = ", ".join(f"{count:,} from {sign}" for sign, count in signs)
        click.echo(f"directions: {text}", err=True)
    if summary.rejected and options.rejects:
        click.echo(f"{summary.rejected:,} rejected lines are in {options.rejects}", err=True)
    click.echo(str(summary), err=True)  # the last line (but for an Error: line)
    failure = summary.failed(max_rejects)
    if failure is not None:
        raise click.ClickException(failure)


def _progress(follow: bool) -> Callable[[Summary], None]:
    last = [0, 0, 0]

    def show(summary: Summary) -> None:
        for warning in summary.warnings[last[2] :]:
            click.echo(f"warning: {warning}", err=True)
        new = summary.stored - last[0], summary.updated - last[1]
        if follow and any(new):
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            click.echo(f"{stamp} +{new[0]} calls, {new[1]} updated", err=True)
            sys.stderr.flush()
        last[:] = [summary.stored, summary.updated, len(summary.warnings)]

    return show


@click.group()
def ingest() -> None:
    """Import Asterisk call records: CSV files, the SQL cdr table, queue_log, CEL."""


@ingest.command("csv")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@follow_option
@gmt_option("Times in the file are UTC (cdr_csv usegmtime).")
@click.option(
    "--columns",
    default=None,
    help="Map header names ('Ora start=start,Numar=src') or give the layout of a "
    "headerless file ('clid,src,dst,...').",
)
@rejects_option
@max_rejects_option
@from_start_option
@db_option
@config_option
def csv_command(
    files: tuple[str, ...],
    follow: bool,
    gmt: bool,
    columns: str | None,
    rejects: str,
    max_rejects: float,
    from_start: bool,
    db: str | None,
    config: str | None,
) -> None:
    """Import Asterisk CSV files (cdr_csv Master.csv, cdr_custom, exports with a header).

    The layout is detected from the data. Each file resumes where the last run stopped.
    """
    engine, options = _options(config, db, rejects, from_start)
    _run(options, follow, lambda: ingest_csv(engine, files, options, follow=follow, gmt=gmt,
                                             columns=columns), max_rejects)  # fmt: skip


@ingest.command("db")
@click.argument("url")
@click.option("--table", "table_name", default="cdr", show_default=True)
@follow_option
@lookback_option(
    "3h",
    "How far behind the latest call each poll looks again for rows committed late "
    "(longer than your longest call).",
)
@interval_option
@rejects_option
@max_rejects_option
@from_start_option
@db_option
@config_option
def db_command(
    url: str,
    table_name: str,
    follow: bool,
    lookback: dt.timedelta,
    interval: float,
    rejects: str,
    max_rejects: float,
    from_start: bool,
    db: str | None,
    config: str | None,
) -> None:
    """Import the Asterisk cdr table of the database at URL (mysql://, postgresql://,
    sqlite:///), e.g. FreePBX's mysql://user:pass@host/asteriskcdrdb."""
    engine, options = _options(config, db, rejects, from_start)
    _run(
        options,
        follow,
        lambda: ingest_db(
            engine,
            url,
            options,
            table_name=table_name,
            follow=follow,
            lookback=lookback,
            interval=interval,
        ),
        max_rejects,
    )


@ingest.command("queue-log")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--db-url",
    "url",
    default=None,
    help="Read the queue_log table of this PBX database (mysql://, postgresql://, "
    "sqlite:///) instead of a file.",
)
@click.option(
    "--table",
    "table_name",
    default="queue_log",
    show_default=True,
    help="The table, with --db-url (FreePBX/PBXware: queuelog or queue_log).",
)
@event_table_options("queue_log_realtime_use_gmt")
@follow_option
@rejects_option
@max_rejects_option
@from_start_option
@db_option
@config_option
def queue_log_command(
    file: str | None,
    url: str | None,
    table_name: str,
    lookback: dt.timedelta,
    interval: float,
    gmt: bool,
    follow: bool,
    rejects: str,
    max_rejects: float,
    from_start: bool,
    db: str | None,
    config: str | None,
) -> None:
    """Import Asterisk's queue_log: queue name, hold and ring times, agents, transfers.

    FILE is the queue_log file (/var/log/asterisk/queue_log) or a CSV export of a
    queue_log table; --db-url reads the table itself. Give one of them.
    """
    if (file is None) == (url is None):
        raise click.UsageError("give a queue_log FILE or --db-url URL (one of them)")
    engine, options = _options(config, db, rejects, from_start)
    if url is not None:
        from cdrapi.ingest.queue_log_table import ingest_queue_log_table

        def work() -> Summary:
            return ingest_queue_log_table(
                engine, url, options, table_name=table_name, follow=follow,
                lookback=lookback, interval=interval, gmt=gmt,
            )  # fmt: skip
    else:
        path = file

        def work() -> Summary:
            assert path is not None
            return ingest_queue_log(engine, path, options, follow=follow)

    _run(options, follow, work, max_rejects)


@ingest.command("cel")
@click.argument("sources", nargs=-1, required=True)
@click.option("--table", "table_name", default="cel", show_default=True,
              help="The table, when SOURCE is a database URL.")  # fmt: skip
@click.option(
    "--columns",
    default=None,
    help="The layout of a cel_custom file whose template is not the sample's: its column "
    "names in order ('eventtype,eventtime,...,linkedid,extra'; '-' skips one).",
)
@event_table_options("the backend's usegmtime")
@follow_option
@rejects_option
@max_rejects_option
@from_start_option
@db_option
@config_option
def cel_command(
    sources: tuple[str, ...],
    table_name: str,
    columns: str | None,
    lookback: dt.timedelta,
    interval: float,
    gmt: bool,
    follow: bool,
    rejects: str,
    max_rejects: float,
    from_start: bool,
    db: str | None,
    config: str | None,
) -> None:
    """Import Asterisk CEL: IVR paths, transfers, MixMonitor files, ring times, call ends.

    Each SOURCE is a cel_custom CSV file (/var/log/asterisk/cel-custom/Master.csv) or a
    database URL (mysql://, postgresql://, sqlite:///) with a cel table (cel_odbc,
    cel_pgsql, cel_sqlite3; FreePBX's asteriskcdrdb). Files resume where the last run
    stopped; a table from its last position less --lookback.
    """
    urls = [source for source in sources if "://" in source]
    files = [source for source in sources if "://" not in source]
    if urls and (files or len(urls) > 1):
        raise click.UsageError("give cel_custom FILES, or one database URL")
    engine, options = _options(config, db, rejects, from_start)
    if urls:
        from cdrapi.ingest.cel_table import ingest_cel_table

        def work() -> Summary:
            return ingest_cel_table(
                engine, urls[0], options, table_name=table_name, follow=follow,
                lookback=lookback, interval=interval, gmt=gmt,
            )  # fmt: skip
    else:
        from cdrapi.ingest.cel_file import ingest_cel

        def work() -> Summary:
            return ingest_cel(engine, files, options, follow=follow, columns=columns)

    _run(options, follow, work, max_rejects)


@ingest.command("rederive")
@db_option
@config_option
def rederive_command(db: str | None, config: str | None) -> None:
    """Derive the fields of every ingested call again (after a directory change)."""
    engine, options = _options(config, db, None, False)
    with clean_errors(*STORE_ERRORS, IngestError):
        summary = rederive(engine, options)
    for warning in summary.warnings:  # a [fields] value that cannot be stored, by call
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"Derived {summary.updated:,} calls again in {summary.seconds:.1f}s", err=True)
