"""Web accounts in the store (SQLite and PostgreSQL): made, listed, signed in with (argon2
hashes, remade when the parameters change), their password changed, disabled, removed;
and the web's generated key, the same for every process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select, update

from cdrapi.store.accounts import (
    AccountError,
    create_account,
    disable_account,
    enable_account,
    get_account,
    get_account_by_id,
    list_accounts,
    remove_account,
    set_password,
    sign_in,
    web_key,
)
from cdrapi.store.engine import connect
from cdrapi.store.schema import web_accounts

PASSWORD = "correct horse battery"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = connect(db_url)  # the schema, web accounts included, as every command makes it
    yield engine
    engine.dispose()


def test_accounts_are_made_with_their_scope_and_listed(engine: Engine) -> None:
    assert list_accounts(engine) == []
    admin = create_account(engine, "admin", PASSWORD)
    agent = create_account(engine, "ana.pop@example.com", PASSWORD, extensions=["101", "102"] * 2)
    sales = create_account(engine, "sales", PASSWORD, project_ids=[2, 1], extensions=["205"])
    assert admin.is_admin and (admin.project_ids, admin.extensions) == ((), ())
    assert (agent.project_ids, agent.extensions) == ((), ("101", "102"))
    assert (sales.project_ids, sales.extensions) == ((2, 1), ("205",))
    assert not agent.is_admin and not agent.disabled and agent.last_sign_in_at is None
    assert [account.username for account in list_accounts(engine)] == [
        "admin", "ana.pop@example.com", "sales",
    ]  # fmt: skip
    assert get_account_by_id(engine, sales.id) == sales
    assert get_account(engine, "nobody") is None
    assert get_account(engine, "Admin") is None  # names are exact
    assert "password" not in repr(admin) and PASSWORD not in repr(admin)


def test_passwords_are_stored_as_argon2_hashes(engine: Engine) -> None:
    create_account(engine, "admin", PASSWORD)
    with engine.connect() as conn:
        stored = conn.execute(select(web_accounts.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


@pytest.mark.parametrize(
    ("username", "password", "extensions", "message"),
    [
        ("admin", "short", (), "at least 8 characters"),
        ("two words", PASSWORD, (), "invalid username 'two words'"),
        ("", PASSWORD, (), "invalid username ''"),
        ("-x", PASSWORD, (), "starting with a letter or digit"),
        ("agent", PASSWORD, ("10 1",), "invalid extension '10 1'"),
        ("agent", PASSWORD, ("101,102",), "invalid extension '101,102'"),
    ],
)
def test_bad_accounts_are_refused_in_words(
    tmp_path: Path, username: str, password: str, extensions: tuple[str, ...], message: str
) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'cdrapi.db'}")  # refused before any SQL
    with pytest.raises(AccountError, match=message):
        create_account(engine, username, password, extensions=extensions)
    assert list_accounts(engine) == []
    engine.dispose()


def test_a_taken_name_is_refused(engine: Engine) -> None:
    create_account(engine, "admin", PASSWORD)
    with pytest.raises(AccountError, match="an account named 'admin' already exists"):
        create_account(engine, "admin", "another password", project_ids=[1])
    assert [account.is_admin for account in list_accounts(engine)] == [True]


def test_sign_in_needs_the_password_and_an_enabled_account(engine: Engine) -> None:
    made = create_account(engine, "agent", PASSWORD, extensions=["101"])
    assert sign_in(engine, "agent", "wrong password") is None
    assert sign_in(engine, "nobody", PASSWORD) is None
    assert sign_in(engine, "agent", "x" * 5000) is None  # refused before hashing
    signed = sign_in(engine, "agent", PASSWORD)
    assert signed is not None and signed.id == made.id and signed.last_sign_in_at is not None

    disable_account(engine, "agent")
    disabled = get_account(engine, "agent")
    assert disabled is not None and disabled.disabled
    assert disabled.generation == made.generation + 1  # its sessions end
    assert sign_in(engine, "agent", PASSWORD) is None
    enable_account(engine, "agent")
    assert sign_in(engine, "agent", PASSWORD) is not None


def test_a_new_password_replaces_the_old_and_ends_sessions(engine: Engine) -> None:
    made = create_account(engine, "agent", PASSWORD)
    set_password(engine, "agent", "a brand new secret")
    changed = get_account(engine, "agent")
    assert changed is not None and changed.generation == made.generation + 1
    assert sign_in(engine, "agent", PASSWORD) is None
    assert sign_in(engine, "agent", "a brand new secret") is not None
    with pytest.raises(AccountError, match="at least 8"):
        set_password(engine, "agent", "short")
    with pytest.raises(AccountError, match="no account named 'nobody'"):
        set_password(engine, "nobody", "a brand new secret")


def test_a_hash_of_older_parameters_is_remade_at_sign_in(engine: Engine) -> None:
    create_account(engine, "agent", PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with engine.begin() as conn:
        conn.execute(update(web_accounts).values(password_hash=weak))
    signed = sign_in(engine, "agent", PASSWORD)
    assert signed is not None
    assert signed.password_hash != weak
    assert not PasswordHasher().check_needs_rehash(signed.password_hash)
    assert sign_in(engine, "agent", PASSWORD) is not None  # the new hash holds the password


def test_remove(engine: Engine) -> None:
    create_account(engine, "agent", PASSWORD)
    remove_account(engine, "agent")
    assert get_account(engine, "agent") is None and sign_in(engine, "agent", PASSWORD) is None
    with pytest.raises(AccountError, match="no account named 'agent'"):
        remove_account(engine, "agent")
    for change in (disable_account, enable_account):
        with pytest.raises(AccountError, match="no account named 'agent'"):
            change(engine, "agent")


def test_the_web_key_is_made_once_and_shared(engine: Engine, db_url: str) -> None:
    first = web_key(engine, "session")
    other_process = connect(db_url, create=False)  # another worker of the same store
    try:
        assert web_key(other_process, "session") == first
    finally:
        other_process.dispose()
    assert len(first) >= 40
    assert web_key(engine, "other") not in ("", first)
