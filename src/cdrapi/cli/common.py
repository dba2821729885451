"""What every ``cdrapi`` command shares: the group, common options and error reporting.

Each command parses its options, calls one library function and turns library errors into
a one-line message and exit status 1 (no traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from cdrapi.settings import Settings, SettingsError, load_settings
from cdrapi.store.engine import StoreError

__all__ = ["clean_errors", "config_option", "db_option", "main", "settings"]

config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file with settings (keys as in the README's configuration table).",
)
db_option = click.option(
    "--db", default=None, help="Database URL (default: $CDRAPI_DB or sqlite:///cdrapi.db)."
)


@contextmanager
def clean_errors(*errors: type[Exception]) -> Iterator[None]:
    """Report library errors (settings, store, and ``errors``) as one line on stderr."""
    handled: tuple[type[Exception], ...] = (SettingsError, StoreError, *errors)
    try:
        yield
    except handled as exc:
        raise click.ClickException(str(exc)) from exc


def settings(config: str | None, **overrides: Any) -> Settings:
    """The settings, with command-line ``overrides`` winning where given."""
    with clean_errors():
        return load_settings(config, **overrides)


@click.group()
@click.version_option(package_name="cdrapi")
def main() -> None:
    """cdrapi: a self-hosted Call Detail Record API for Asterisk-based PBXs."""
