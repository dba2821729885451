"""``cdrapi user``: the web call log's accounts.

    cdrapi user add NAME (--admin | --projects 1,2 | --extensions 101,102) [--password-stdin]
    cdrapi user list
    cdrapi user passwd NAME [--password-stdin]
    cdrapi user disable NAME    (ends its sessions; ``enable`` lets it sign in again)
    cdrapi user remove NAME

An account sees the calls of its projects and of its extensions (given both, calls
matching both); ``--admin`` makes one that sees every call, and must be said: an account
is never unscoped by omission. ``--projects``/``--project`` and ``--extensions``/
``--extension`` take comma-separated lists and may be repeated. The password is read
twice from the terminal, or once from standard input with ``--password-stdin`` (its first
line, the line break left out). A new password and ``disable`` end the account's browser
sessions. The accounts are in the store (:mod:`cdrapi.store.accounts`), not the PBX's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import click
from sqlalchemy import Engine

from cdrapi.cli.common import clean_errors, config_option, db_option
from cdrapi.cli.settings import STORE_ERRORS, settings
from cdrapi.store.accounts import (
    AccountError,
    StoredAccount,
    create_account,
    disable_account,
    enable_account,
    list_accounts,
    remove_account,
    set_password,
)
from cdrapi.store.engine import connect

__all__ = ["web_user"]

_ERRORS: tuple[type[Exception], ...] = (AccountError, *STORE_ERRORS)
T = TypeVar("T")

name_argument = click.argument("name")
password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input's first line."
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to ask the password on: use --password-stdin")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _listed(values: tuple[str, ...]) -> list[str]:
    """Repeated, comma-separated option values as one list."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _project_ids(values: tuple[str, ...]) -> list[int]:
    listed = _listed(values)
    if not all(value.isdigit() for value in listed):
        raise click.BadParameter(f"{', '.join(listed)}: project ids are whole numbers")
    return [int(value) for value in listed]


def scope_text(account: StoredAccount) -> str:
    """The calls an account sees, in words."""
    if account.is_admin:
        return "every call (admin)"
    parts = []
    if account.project_ids:
        parts.append("projects " + ", ".join(str(project) for project in account.project_ids))
    if account.extensions:
        parts.append("extensions " + ", ".join(account.extensions))
    return " and ".join(parts)


@click.group()
def web_user() -> None:
    """Manage the web call log's accounts (who may sign in, which calls each sees)."""


@web_user.command()
@name_argument
@click.option("--admin", is_flag=True, help="The account sees every call.")
@click.option(
    "--projects", "--project", "projects", multiple=True, metavar="IDS",
    help="Project ids whose calls it sees (comma-separated, repeatable).",
)  # fmt: skip
@click.option(
    "--extensions", "--extension", "extensions", multiple=True, metavar="EXTS",
    help="Extensions whose calls it sees (comma-separated, repeatable).",
)  # fmt: skip
@password_stdin_option
@db_option
@config_option
def add(
    name: str,
    admin: bool,
    projects: tuple[str, ...],
    extensions: tuple[str, ...],
    password_stdin: bool,
    db: str | None,
    config: str | None,
) -> None:
    """Add a web account named NAME."""
    project_ids, extension_list = _project_ids(projects), _listed(extensions)
    if admin and (project_ids or extension_list):
        raise click.UsageError("--admin sees every call: give it without --projects/--extensions")
    if not admin and not project_ids and not extension_list:
        raise click.UsageError(
            "say which calls it sees: --projects IDS, --extensions EXTS, or --admin for all"
        )
    password = _password(password_stdin)
    made = _on_store(
        db,
        config,
        lambda engine: create_account(
            engine, name, password, project_ids=project_ids, extensions=extension_list
        ),
    )
    click.echo(f"Added web account {made.username!r}: sees {scope_text(made)}.")


@web_user.command(name="list")
@db_option
@config_option
def list_(db: str | None, config: str | None) -> None:
    """List the web accounts."""
    accounts = _on_store(db, config, list_accounts)
    if not accounts:
        click.echo("No web accounts: add one with `cdrapi user add NAME --admin`.")
        return
    rows = [("USERNAME", "SEES", "STATUS", "LAST SIGN-IN (UTC)")] + [
        (
            account.username,
            scope_text(account),
            "disabled" if account.disabled else "enabled",
            account.last_sign_in_at or "never",
        )
        for account in accounts
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        padded = (cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        click.echo("  ".join([*padded, row[3]]))


def _on_store(db: str | None, config: str | None, action: Callable[[Engine], T]) -> T:
    """``action(engine)`` on the configured store, its errors reported as one line."""
    chosen = settings(config, db=db)
    with clean_errors(*_ERRORS):
        engine = connect(chosen.db)
        try:
            return action(engine)
        finally:
            engine.dispose()


@web_user.command()
@name_argument
@password_stdin_option
@db_option
@config_option
def passwd(name: str, password_stdin: bool, db: str | None, config: str | None) -> None:
    """Give NAME a new password (its browser sessions end)."""
    password = _password(password_stdin)
    _on_store(db, config, lambda engine: set_password(engine, name, password))
    click.echo(f"New password for {name!r}: its browser sessions have ended.")


@web_user.command()
@name_argument
@db_option
@config_option
def disable(name: str, db: str | None, config: str | None) -> None:
    """Stop NAME signing in, and end its browser sessions (the account stays)."""
    _on_store(db, config, lambda engine: disable_account(engine, name))
    click.echo(f"Disabled {name!r}: its browser sessions have ended.")


@web_user.command()
@name_argument
@db_option
@config_option
def enable(name: str, db: str | None, config: str | None) -> None:
    """Let a disabled NAME sign in again."""
    _on_store(db, config, lambda engine: enable_account(engine, name))
    click.echo(f"Enabled {name!r}.")


@web_user.command()
@name_argument
@db_option
@config_option
def remove(name: str, db: str | None, config: str | None) -> None:
    """Remove NAME (its browser sessions end with it)."""
    _on_store(db, config, lambda engine: remove_account(engine, name))
    click.echo(f"Removed {name!r}.")
