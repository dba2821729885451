"""``cdrapi pull``: every call from any /api/cdr server into a file or a database.

cdrapi pull https://pbx.example.com --token T --from 2024-01-01 -o calls.parquet
cdrapi pull https://pbx.example.com --token T --state sync.json -o sqlite:///calls.db

While the server is down (a restart, say), the pull waits for it for up to ``--retry-for``
(60 s by default), saying so on stderr; beyond that it stops with an error that names the
state file, which the next run resumes from.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from cdrapi.cli.common import clean_errors, parse_duration
from cdrapi.client import ClientError, Retry
from cdrapi.client import pull as pull_calls
from cdrapi.client.exchange import endpoint
from cdrapi.client.filters import PAIR_FILTERS
from cdrapi.client.outputs import open_output
from cdrapi.client.progress import Progress

__all__ = ["pull"]

_WHEN = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?")


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _WHEN.fullmatch(value.strip()):
        raise click.BadParameter("expected YYYY-MM-DD, YYYY-MM-DD HH:MM or YYYY-MM-DD HH:MM:SS")
    return None if value is None else value.strip()


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


class _Notices(logging.Handler):
    """The client's notices (the server is down, it answers again) on stderr, each on a
    line of its own even while a progress bar is drawn."""

    def __init__(self, progress: Progress | None) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        if self.progress is not None:
            self.progress.end_line()
        click.echo(record.getMessage(), err=True)


@contextmanager
def _notices(progress: Progress | None) -> Iterator[None]:
    logger = logging.getLogger("cdrapi.client")
    handler = _Notices(progress)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def parse_filters(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``name=value`` options as filters: a repeated name is a list; ``date_between`` and
    ``hour_between`` take ``FROM,TO`` (either may be empty)."""
    values: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, not {pair!r}", param_hint="--filter")
        name = name.strip()
        if name in PAIR_FILTERS and "," in value:
            values.setdefault(name, []).extend(end.strip() for end in value.split(",", 1))
        else:
            values.setdefault(name, []).append(value)
    filters: dict[str, Any] = {}
    for name, given in values.items():
        if name in PAIR_FILTERS:
            if len(given) != 2:
                raise click.BadParameter(f"{name} takes FROM,TO", param_hint="--filter")
            filters[name] = [end or None for end in given]
        else:
            filters[name] = given[0] if len(given) == 1 else given
    return filters


@click.command()
@click.argument("url")
@click.option(
    "--token",
    envvar="CDRAPI_API_TOKEN",
    required=True,
    help="Bearer token of the server (default: $CDRAPI_API_TOKEN).",
)
@click.option(
    "--key",
    "api_key",
    envvar="CDRAPI_API_KEY",
    default=None,
    help="API key to sign requests with (api_hash), when the server has one "
    "(default: $CDRAPI_API_KEY).",
)
@click.option(
    "--from",
    "start",
    metavar="WHEN",
    callback=_when,
    help="Calls from WHEN: YYYY-MM-DD[ HH:MM[:SS]].",
)
@click.option(
    "--to",
    "end",
    metavar="WHEN",
    callback=_when,
    help="Calls up to WHEN, inclusive (a day: all of it).",
)
@click.option(
    "--filter",
    "-f",
    "filter_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Any filter of the API (direction=IN, telephone_like=0721*, hour_between=08,17:30). "
    "Repeat a name for a list of values.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="OUT",
    help="Where to: FILE.jsonl, FILE.csv, FILE.parquet, sqlite:///FILE.db or postgresql://...",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False),
    default=None,
    help="Sync state file: pull only calls newer than the last run (adding them to the "
    "output), and resume an interrupted pull.",
)
@click.option("--table", default="calls", show_default=True, help="Table for a database output.")
@click.option("--json", "use_json", is_flag=True, help="Send JSON bodies instead of form bodies.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the server before a try counts as failed.",
)
@click.option(
    "--retry-for",
    "retry_for",
    default="60s",
    callback=_duration,
    show_default=True,
    metavar="DURATION",
    help="How long to wait out a server that is down (connection refused or dropped, "
    "timeouts, HTTP 429, 500, 502, 503, 504), from the outage's first failure: retries "
    "back off from 0.5 s to 10 s, with jitter. Then the pull stops with an error; with "
    "--state the state file is intact and the next run resumes. 0 = no retry. "
    "E.g. 90s, 5m, 1h.",
)
@click.option(
    "--checkpoint-every",
    "checkpoint_seconds",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="With --state: how often progress is made durable (a resumed pull repeats less).",
)
@click.option(
    "--progress/--no-progress",
    "show_progress",
    default=True,
    show_default=True,
    help="Show progress on stderr: a bar on a terminal, a line every 10 s otherwise.",
)
def pull(
    url: str,
    token: str,
    api_key: str | None,
    start: str | None,
    end: str | None,
    filter_pairs: tuple[str, ...],
    output: str,
    state: str | None,
    table: str,
    use_json: bool,
    concurrency: int,
    timeout: float,
    retry_for: float,
    checkpoint_seconds: float,
    show_progress: bool,
) -> None:
    """Pull every call matching the filters from the /api/cdr server at URL into OUT.

    URL is the server's address or its /api/cdr endpoint. Without --state, OUT is
    replaced whole once the pull succeeds; with it, new calls are added to OUT and an
    interrupted pull resumes where it stopped.

    A server that goes down (a restart) is waited for, up to --retry-for (60s): the pull
    carries on when it is back. If it stays down longer, the pull stops with an error
    saying the state file is intact; run the same command again to resume.
    """
    try:
        endpoint(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from exc
    try:
        open_output(output, table=table)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--output") from exc
    filters = parse_filters(filter_pairs)
    if start or end:
        if "date_between" in filters:
            raise click.UsageError("give --from/--to or --filter date_between, not both")
        filters = {"date_between": [start, end], **filters}
    # Arrow's default allocator keeps much more memory resident than it uses; this process
    # is meant to stay small (Parquet output). The user's own setting wins.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    progress = Progress() if show_progress else None
    try:
        with _notices(progress), clean_errors(ClientError):
            result = pull_calls(
                url,
                token,
                output,
                api_key=api_key,
                filters=filters,
                state=state,
                json=use_json,
                concurrency=concurrency,
                table=table,
                timeout=timeout,
                retry=Retry(retry_for=retry_for),
                progress=progress,
                checkpoint_seconds=checkpoint_seconds,
            )
    except KeyboardInterrupt:
        if progress is not None:
            progress.end_line()
        again = " (run it again to resume)" if state else ""
        click.echo(f"Interrupted{again}.", err=True)
        sys.exit(130)
    except click.ClickException:
        if progress is not None:
            progress.end_line()
        raise
    summary = (
        f"Pulled {result.records:,} records into {result.target} in {result.seconds:.1f}s "
        f"({result.rate:,.0f} records/s)"
    )
    if state:
        summary += f"; last id {result.last_id}, kept in {state}"
    if progress is not None:
        progress.finish(summary)
    else:
        click.echo(summary, err=True)
