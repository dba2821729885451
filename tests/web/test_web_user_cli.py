"""``cdrapi user`` as an admin runs it (the real command, SQLite and PostgreSQL): accounts
added with their scope and a password from standard input, listed, their password
changed, disabled, enabled and removed; mistakes are one ``Error:`` line, exit 1 or 2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine

from cdrapi.cli import main
from cdrapi.store.accounts import get_account, sign_in
from cdrapi.store.engine import connect
from tests.test_cli import CDRAPI

PASSWORD = "correct horse battery"


def run(*args: str, password: str | None = None) -> tuple[int, str, str]:
    """``cdrapi ARGS`` in this process (click's runner: the real command, real stdin),
    ``password`` as standard input's line; no terminal either way."""
    clean = {name: None for name in os.environ if name.startswith("CDRAPI_")}
    done = CliRunner(env=clean).invoke(
        main, list(args), input=None if password is None else password + "\n"
    )
    return done.exit_code, done.stdout, done.stderr


def run_command(*args: str, password: str) -> tuple[int, str, str]:
    """The installed ``cdrapi`` command, in a process of its own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CDRAPI_")}
    done = subprocess.run(
        [CDRAPI, *args],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=clean,
    )
    return done.returncode, done.stdout, done.stderr


def signs_in(engine: Engine, username: str, password: str) -> bool:
    return sign_in(engine, username, password) is not None


def test_accounts_from_add_to_remove(db_url: str) -> None:
    db = ("--db", db_url)
    code, out, err = run(
        "user", "add", "boss", "--admin", "--password-stdin", *db, password=PASSWORD
    )
    assert (code, err) == (0, "") and out == "Added web account 'boss': sees every call (admin).\n"
    code, out, _ = run(
        "user", "add", "sales", "--password-stdin", "--projects", "1,2", "--project", "3",
        *db, password=PASSWORD,
    )  # fmt: skip
    assert code == 0 and "sees projects 1, 2, 3." in out
    code, out, _ = run(
        "user", "add", "agent", "--extensions", "101,102", "--password-stdin",
        *db, password="agent's own secret",
    )  # fmt: skip
    assert code == 0 and "sees extensions 101, 102." in out

    engine = connect(db_url)
    try:
        assert signs_in(engine, "boss", PASSWORD) and signs_in(
            engine, "agent", "agent's own secret"
        )
        code, out, _ = run("user", "list", *db)
        lines = out.splitlines()
        assert code == 0 and lines[0].split() == [
            "USERNAME",
            "SEES",
            "STATUS",
            "LAST",
            "SIGN-IN",
            "(UTC)",
        ]
        assert [line.split()[0] for line in lines[1:]] == ["agent", "boss", "sales"]
        assert "extensions 101, 102" in lines[1] and "enabled" in lines[1]
        assert lines[3].rstrip().endswith("never")  # sales never signed in

        code, out, _ = run(
            "user", "passwd", "agent", "--password-stdin", *db, password="new secret 1"
        )
        assert code == 0 and "sessions have ended" in out
        assert not signs_in(engine, "agent", "agent's own secret")
        assert signs_in(engine, "agent", "new secret 1")

        assert run("user", "disable", "agent", *db)[0] == 0
        assert not signs_in(engine, "agent", "new secret 1")
        assert "disabled" in run("user", "list", *db)[1].splitlines()[1]
        assert run("user", "enable", "agent", *db)[0] == 0
        assert signs_in(engine, "agent", "new secret 1")

        code, out, _ = run("user", "remove", "agent", *db)
        assert code == 0 and out == "Removed 'agent'.\n"
        assert get_account(engine, "agent") is None
    finally:
        engine.dispose()


def test_the_installed_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/cdrapi.db"
    code, out, err = run_command(
        "user",
        "add",
        "sales",
        "--password-stdin",
        "--projects",
        "1,2",
        "--db",
        db,
        password=PASSWORD,
    )
    assert (code, err) == (0, "") and out == "Added web account 'sales': sees projects 1, 2.\n"
    engine = connect(db)
    try:
        assert signs_in(engine, "sales", PASSWORD)
    finally:
        engine.dispose()


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    db = ("--db", f"sqlite:///{tmp_path}/cdrapi.db")
    assert run("user", "add", "boss", "--admin", "--password-stdin", *db, password=PASSWORD)[0] == 0
    for args, password, code, message in [
        (("add", "boss", "--admin"), PASSWORD, 1, "Error: an account named 'boss' already exists"),
        (("add", "x"), PASSWORD, 2, "say which calls it sees: --projects IDS, --extensions EXTS"),
        (("add", "x", "--admin", "--projects", "1"), PASSWORD, 2, "--admin sees every call"),
        (("add", "x", "--projects", "one"), PASSWORD, 2, "project ids are whole numbers"),
        (("add", "x", "--admin"), "short", 1, "Error: the password needs at least 8 characters"),
        (("add", "two words", "--admin"), PASSWORD, 1, "Error: invalid username 'two words'"),
        (("passwd", "nobody"), PASSWORD, 1, "Error: no account named 'nobody'"),
        (("remove", "nobody"), None, 1, "Error: no account named 'nobody'"),
        (("disable", "nobody"), None, 1, "Error: no account named 'nobody'"),
    ]:
        stdin_flag = ("--password-stdin",) if password is not None else ()
        got, out, err = run("user", *args, *stdin_flag, *db, password=password)
        assert got == code and message in err and "Traceback" not in err, (args, err)
        assert out == ""
    # Without --password-stdin the password is asked on the terminal: there is none here.
    got, _, err = run("user", "add", "x", "--admin", *db)
    assert got == 2 and "no terminal to ask the password on: use --password-stdin" in err
    assert [line.split()[0] for line in run("user", "list", *db)[1].splitlines()[1:]] == ["boss"]
