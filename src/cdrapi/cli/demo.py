"""``cdrapi demo``: fill a database with synthetic PBX traffic."""

from __future__ import annotations

import datetime as dt
import time

import click

from cdrapi.cli.common import clean_errors, config_option, db_option
from cdrapi.cli.settings import STORE_ERRORS, settings
from cdrapi.store.engine import connect

__all__ = ["demo"]


@click.command()
@db_option
@click.option("--calls", type=click.IntRange(min=0), default=100_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last day of the generated traffic (default: today).",
)
@config_option
def demo(
    db: str | None, calls: int, days: int, seed: int, end: dt.datetime | None, config: str | None
) -> None:
    """Fill a database with realistic synthetic PBX traffic (deterministic for a seed)."""
    from cdrapi.demo import generate

    chosen = settings(config, db=db)
    started = time.perf_counter()
    with clean_errors(*STORE_ERRORS):
        engine = connect(chosen.db)
        summary = generate(
            engine, calls=calls, days=days, seed=seed, end=end.date() if end else None
        )
    elapsed = time.perf_counter() - started
    rate = summary.calls / elapsed if elapsed else 0.0
    click.echo(
        f"Wrote {summary.calls:,} calls ({summary.start} .. {summary.end}) to "
        f"{chosen.db} in {elapsed:.1f}s ({rate:,.0f} calls/s)"
    )
