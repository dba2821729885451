"""Web accounts: who may sign in to the call log in a browser, and which calls each sees.

The accounts are cdrapi's own, in a table of their own (``web_accounts``, defined with the
other tables in :mod:`cdrapi.store.schema`), not the PBX directory's ``users`` (ingestion
replaces those with the PBX's configuration). Each holds:

- a unique ``username`` and an argon2 hash of its password (argon2-cffi's
  ``PasswordHasher`` defaults; a hash made with other parameters is made again at the
  next sign-in, :func:`sign_in`);
- its **scope**: the ids of the projects and the extensions whose calls it sees. Both
  empty is the **admin** case: the account sees every call. Given both, a call must
  match both (one of the projects, and one of the extensions), as two more filters would;
- its session ``generation``: the browser sessions carry it, and a password change or a
  disabling raises it, which ends every session signed in before;
- whether it is disabled, when it was made and when it last signed in (UTC).

``web_keys`` holds the web's generated secrets (:func:`web_key`), so that every worker of
a server, and a server started again, signs sessions with the same key.

Every function takes the store's engine and runs one transaction; driver errors are
raised as :class:`~cdrapi.store.engine.StoreError`, refusals (a taken name, a short
password, no such account) as :class:`AccountError`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, Row, delete, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cdrapi.store.diskfull import AGAIN, reporting_full_disk
from cdrapi.store.engine import StoreError
from cdrapi.store.schema import web_accounts, web_keys

__all__ = [
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "AccountError",
    "StoredAccount",
    "check_extensions",
    "check_username",
    "create_account",
    "disable_account",
    "enable_account",
    "get_account",
    "get_account_by_id",
    "list_accounts",
    "remove_account",
    "set_password",
    "sign_in",
    "web_key",
]

#: Password lengths accepted (a longer one is refused before it is hashed: hashing is
#: the expensive part of a sign-in).
MIN_PASSWORD, MAX_PASSWORD = 8, 1024

_HASHER = PasswordHasher()
_USERNAME = re.compile(r"\w[\w.@+-]{0,149}")
_EXTENSION = re.compile(r"[^\s,]{1,80}")


class AccountError(Exception):
    """An account operation refused: the text says why, in words for the admin."""


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """One row of ``web_accounts``. Empty ``project_ids`` and ``extensions``: an admin."""

    id: int
    username: str
    project_ids: tuple[int, ...]
    extensions: tuple[str, ...]
    generation: int
    disabled: bool
    created_at: str
    last_sign_in_at: str | None
    password_hash: str = field(repr=False)

    @property
    def is_admin(self) -> bool:
        """Whether it sees every call (no scope)."""
        return not self.project_ids and not self.extensions


def check_username(username: str) -> str:
    """``username`` if it can name an account (letters, digits, ``.@+-_``, at most 150
    characters, a letter or digit first); raise :class:`AccountError` if not."""
    if not _USERNAME.fullmatch(username):
        raise AccountError(
            f"invalid username {username!r}: use letters, digits and . @ + - _ "
            "(at most 150 characters, starting with a letter or digit)"
        )
    return username


def check_extensions(extensions: Iterable[str]) -> tuple[str, ...]:
    """The extensions, each checked (no spaces or commas, at most 80 characters), without
    repeats; raise :class:`AccountError` naming a bad one."""
    checked = []
    for extension in extensions:
        if not _EXTENSION.fullmatch(extension):
            raise AccountError(f"invalid extension {extension!r}: no spaces or commas")
        checked.append(extension)
    return tuple(dict.fromkeys(checked))


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password may have at most {MAX_PASSWORD} characters")
    return password


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


@contextmanager
def _reading(engine: Engine) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"the web accounts cannot be read: {exc.__class__.__name__}") from exc


@contextmanager
def _writing(engine: Engine, doing: str) -> Iterator[None]:
    try:
        with reporting_full_disk(engine, doing, AGAIN):
            yield
    except SQLAlchemyError as exc:
        raise StoreError(f"{doing} failed: {exc}") from exc


def _account(row: Row[Any]) -> StoredAccount:
    return StoredAccount(
        id=int(row.id),
        username=row.username,
        project_ids=tuple(int(value) for value in json.loads(row.project_ids)),
        extensions=tuple(str(value) for value in json.loads(row.extensions)),
        generation=int(row.generation),
        disabled=bool(row.disabled),
        created_at=row.created_at,
        last_sign_in_at=row.last_sign_in_at,
        password_hash=row.password_hash,
    )


def create_account(
    engine: Engine,
    username: str,
    password: str,
    *,
    project_ids: Iterable[int] = (),
    extensions: Iterable[str] = (),
) -> StoredAccount:
    """A new account; no ``project_ids`` and no ``extensions`` make an admin (every call).

    Raises :class:`AccountError` for a bad or taken username, a bad extension or a
    password shorter than :data:`MIN_PASSWORD`.
    """
    check_username(username)
    projects = tuple(dict.fromkeys(int(value) for value in project_ids))
    if any(value < 0 for value in projects):
        raise AccountError(f"invalid project id in {list(projects)}: ids are >= 0")
    values = {
        "username": username,
        "password_hash": _HASHER.hash(_check_password(password)),
        "project_ids": json.dumps(list(projects)),
        "extensions": json.dumps(list(check_extensions(extensions))),
        "created_at": _now(),
    }
    try:
        with _writing(engine, f"creating the web account {username!r}"), engine.begin() as conn:
            conn.execute(web_accounts.insert().values(**values))
    except StoreError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            raise AccountError(f"an account named {username!r} already exists") from exc
        raise
    created = get_account(engine, username)
    assert created is not None
    return created


def get_account(engine: Engine, username: str) -> StoredAccount | None:
    """The account named ``username`` (exactly), or ``None``."""
    with _reading(engine), engine.connect() as conn:
        row = conn.execute(select(web_accounts).where(web_accounts.c.username == username)).first()
    return None if row is None else _account(row)


def get_account_by_id(engine: Engine, account_id: int) -> StoredAccount | None:
    """The account with ``account_id``, or ``None`` (a browser session's lookup)."""
    with _reading(engine), engine.connect() as conn:
        row = conn.execute(select(web_accounts).where(web_accounts.c.id == account_id)).first()
    return None if row is None else _account(row)


def list_accounts(engine: Engine) -> list[StoredAccount]:
    """Every account, by username."""
    with _reading(engine), engine.connect() as conn:
        rows = conn.execute(select(web_accounts).order_by(web_accounts.c.username)).all()
    return [_account(row) for row in rows]


def _change(engine: Engine, username: str, doing: str, **values: Any) -> None:
    """Update the account ``username``; raise :class:`AccountError` if there is none."""
    with _writing(engine, doing), engine.begin() as conn:
        changed = conn.execute(
            update(web_accounts).where(web_accounts.c.username == username).values(**values)
        ).rowcount
    if not changed:
        raise AccountError(f"no account named {username!r}")


def set_password(engine: Engine, username: str, password: str) -> None:
    """Give ``username`` a new password; its browser sessions end (generation + 1)."""
    _change(
        engine,
        username,
        f"changing the password of {username!r}",
        password_hash=_HASHER.hash(_check_password(password)),
        generation=web_accounts.c.generation + 1,
    )


def disable_account(engine: Engine, username: str) -> None:
    """Refuse ``username``'s sign-ins and end its browser sessions, keeping the account."""
    _change(
        engine,
        username,
        f"disabling {username!r}",
        disabled=1,
        generation=web_accounts.c.generation + 1,
    )


def enable_account(engine: Engine, username: str) -> None:
    """Let a disabled ``username`` sign in again (its old sessions stay ended)."""
    _change(engine, username, f"enabling {username!r}", disabled=0)


def remove_account(engine: Engine, username: str) -> None:
    """Delete ``username``: its sessions end with it (their account id names no one)."""
    with _writing(engine, f"removing {username!r}"), engine.begin() as conn:
        removed = conn.execute(
            delete(web_accounts).where(web_accounts.c.username == username)
        ).rowcount
    if not removed:
        raise AccountError(f"no account named {username!r}")


# Checked against when no account has the name given, so that a sign-in takes as long
# whether the name exists or not. Made at the first such sign-in (a hash takes ~50 ms).
_NOBODY: list[str] = []


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sign_in(engine: Engine, username: str, password: str) -> StoredAccount | None:
    """The account if ``password`` is its password and it is not disabled, else ``None``
    (which of the two is not said). A success is recorded (``last_sign_in_at``), and a
    hash made with other argon2 parameters than today's defaults is replaced.

    Hashing takes tens of milliseconds and 64 MiB: run it off the event loop.
    """
    account = get_account(engine, username) if len(password) <= MAX_PASSWORD else None
    if account is None:
        if not _NOBODY:
            _NOBODY.append(_HASHER.hash(secrets.token_urlsafe(16)))
        _matches(_NOBODY[0], password)
        return None
    if not _matches(account.password_hash, password) or account.disabled:
        return None
    values: dict[str, Any] = {"last_sign_in_at": _now()}
    if _HASHER.check_needs_rehash(account.password_hash):
        values["password_hash"] = _HASHER.hash(password)
    with _writing(engine, f"recording the sign-in of {username!r}"), engine.begin() as conn:
        conn.execute(update(web_accounts).where(web_accounts.c.id == account.id).values(**values))
    return get_account_by_id(engine, account.id)


def web_key(engine: Engine, name: str) -> str:
    """The secret called ``name``, made (32 random bytes, URL-safe text) and stored the
    first time it is asked for; every process asking gets the same one."""
    with _reading(engine), engine.connect() as conn:
        found = conn.execute(select(web_keys.c.value).where(web_keys.c.name == name)).scalar()
    if found is not None:
        return str(found)
    dialect = pg_dialect if engine.dialect.name == "postgresql" else sqlite_dialect
    made = dialect.insert(web_keys).values(name=name, value=secrets.token_urlsafe(32))
    with _writing(engine, f"storing the web key {name!r}"), engine.begin() as conn:
        conn.execute(made.on_conflict_do_nothing(index_elements=[web_keys.c.name]))
        kept = conn.execute(select(web_keys.c.value).where(web_keys.c.name == name)).scalar_one()
    return str(kept)
