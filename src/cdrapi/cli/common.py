"""What every ``cdrapi`` command shares: the group, common options and error reporting.

Each command parses its options, calls one library function and turns library errors into
a one-line message and exit status 1 (no traceback). A command's module is imported only
when that command runs (``cdrapi pull`` does not load the server, the store or the
ingestion code), which keeps start-up quick and memory low."""

from __future__ import annotations

import errno
import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager

import click

__all__ = ["clean_errors", "config_option", "db_option", "main", "parse_duration"]

# command name -> "module:attribute" of its click command
COMMANDS = {
    "demo": "cdrapi.cli.demo:demo",
    "ingest": "cdrapi.cli.ingest:ingest",
    "pull": "cdrapi.cli.pull:pull",
    "serve": "cdrapi.cli.serve:serve",
    "user": "cdrapi.cli.web_user:web_user",
}

config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file with settings (keys as in the README's configuration table).",
)
db_option = click.option(
    "--db", default=None, help="Database URL (default: $CDRAPI_DB or sqlite:///cdrapi.db)."
)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``1.5s``, ``500ms``, ``2m``, ``1h30m``, ``1d``;
    ValueError if it is none of them (the options' callbacks word their own error)."""
    compact = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", compact):
        return float(compact)
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 60s, 5m, 1h30m, 0)")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


@contextmanager
def clean_errors(*errors: type[Exception]) -> Iterator[None]:
    """Report the library errors ``errors`` as one line on stderr (``Error: ...``, exit 1).

    A full disk (``ENOSPC``) met anywhere is reported so too, whatever ``errors`` says:
    it is never a bug, and what to do about it is always the same.
    """
    try:
        yield
    except errors as exc:
        raise click.ClickException(_one_line(str(exc))) from exc
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        where = (
            f"the disk holding {exc.filename}" if exc.filename else "a disk this command writes to"
        )
        raise click.ClickException(
            f"{where} is full ({exc.strerror}); free space and run the same command again"
        ) from exc


def _one_line(message: str) -> str:
    """``message`` with its line breaks made spaces: one error, one line."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


class _LazyGroup(click.Group):
    """A group that imports a command's module when the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        where = COMMANDS.get(name)
        if where is None:
            return None
        module, _, attribute = where.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup)
@click.version_option(package_name="cdrapi")
def main() -> None:
    """cdrapi: a self-hosted Call Detail Record API for Asterisk-based PBXs."""
