"""The ``cdrapi`` command. Each command parses its options, calls one library function and
turns library errors into a one-line message and exit status 1."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from cdrapi.settings import Settings, SettingsError, load_settings
from cdrapi.store.engine import StoreError, connect

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

_config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file with settings (keys as in the README's configuration table).",
)
_db_option = click.option(
    "--db", default=None, help="Database URL (default: $CDRAPI_DB or sqlite:///cdrapi.db)."
)


@contextmanager
def _clean_errors() -> Iterator[None]:
    """Report library errors as one line on stderr, without a traceback."""
    try:
        yield
    except (SettingsError, StoreError) as exc:
        raise click.ClickException(str(exc)) from exc


def _settings(config: str | None, **overrides: Any) -> Settings:
    with _clean_errors():
        return load_settings(config, **overrides)


@click.group()
@click.version_option(package_name="cdrapi")
def main() -> None:
    """cdrapi: a self-hosted Call Detail Record API for Asterisk-based PBXs."""


@main.command()
@_db_option
@click.option("--calls", type=click.IntRange(min=0), default=100_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last day of the generated traffic (default: today).",
)
@_config_option
def demo(
    db: str | None, calls: int, days: int, seed: int, end: dt.datetime | None, config: str | None
) -> None:
    """Fill a database with realistic synthetic PBX traffic (deterministic for a seed)."""
    from cdrapi.demo import generate

    settings = _settings(config, db=db)
    started = time.perf_counter()
    with _clean_errors():
        engine = connect(settings.db)
        summary = generate(
            engine, calls=calls, days=days, seed=seed, end=end.date() if end else None
        )
    elapsed = time.perf_counter() - started
    rate = summary.calls / elapsed if elapsed else 0.0
    click.echo(
        f"Wrote {summary.calls:,} calls ({summary.first_day} .. {summary.last_day}) to "
        f"{settings.db} in {elapsed:.1f}s ({rate:,.0f} calls/s)"
    )


@main.command()
@_db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@_config_option
def serve(
    db: str | None, host: str, port: int, workers: int, access_log: bool, config: str | None
) -> None:
    """Serve the /api/cdr API over HTTP."""
    import uvicorn

    settings = _settings(config, db=db)
    with _clean_errors():
        connect(settings.db).dispose()  # create the schema once, before any worker starts
    token_note = ""
    if not settings.tokens:
        settings.api_token = secrets.token_urlsafe(24)
        token_note = " (generated: set CDRAPI_API_TOKEN to choose your own)"
    # Workers are separate processes: they read the same settings from the environment.
    os.environ.update(
        CDRAPI_DB=settings.db,
        CDRAPI_API_TOKEN=settings.api_token,
        CDRAPI_API_KEY=settings.api_key,
        CDRAPI_TIMEZONE=settings.timezone,
    )
    os.environ.pop("CDRAPI_CONFIG", None)
    click.echo(f"cdrapi serving {settings.db} on http://{host}:{port}/api/cdr")
    click.echo(f"API token: {settings.tokens[0]}{token_note}")
    sys.stdout.flush()
    uvicorn.run(
        "cdrapi.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
    )
