"""Scoped API tokens (``[[tokens]]`` in the config file): a scoped token's /api/cdr answers
only the calls of its scope, counts and pages included, exactly as if the scope were one
more filter (checked against an independent Python reading, on SQLite and PostgreSQL);
no request parameter widens it; the tokens of ``api_token`` still see every call; a bad
token gets the same 401 as ever; and ``cdrapi serve --config`` hands the scoped tokens to
every worker, or refuses a bad one in one line."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cdrapi import http_build_query, sign
from cdrapi.settings import Settings, TokenScope
from cdrapi.store.directory import replace_directory
from cdrapi.store.engine import connect
from tests.conftest import app_client, need
from tests.data import load, oracle, sample_rows
from tests.server.conftest import CDRAPI, assert_envelope, served
from tests.server.test_supervisor import workers_of
from tests.server.test_vendor_php_client import run_client

ADMIN = "admin-token"
#: The directory's users: the calls' user_id 10, 11 and 12 have these extensions.
EXTENSIONS = {10: "205", 11: "300", 12: "101"}
SCOPES = [
    TokenScope(token="project-two", projects=(2,)),
    TokenScope(token="agent-101", extensions=("101",)),  # caller, called, or the call's user
    TokenScope(token="agent-300", extensions=("300",)),  # never a number: its user only
    TokenScope(token="101-in-project-1", projects=(1,), extensions=("101",)),
]
FILTERS: list[dict[str, Any]] = [
    {},
    {"direction": ["IN", "OUT"]},
    {"call_status": "ANSWERED", "date_between": ["2024-01-05", "2024-01-20"]},
    {"telephone_like": "072*"},
    {"user_id": [10, 12], "has_recording_file": "1"},
]
Rows = list[dict[str, Any]]
Serve = Callable[[Settings], AbstractContextManager[str]]


def sees(scope: TokenScope, row: dict[str, Any]) -> bool:
    """Whether ``scope`` keeps ``row``: written from the scope's definition."""
    if scope.projects and row["project_id"] not in scope.projects:
        return False
    if scope.extensions:
        parties = {row["source"], row["destination"], EXTENSIONS.get(row["user_id"])}
        if not parties & set(scope.extensions):
            return False
    return True


def loaded(url: str, count: int = 600) -> Rows:
    engine = connect(url)
    users = [{"id": u, "extension": e, "fullname": f"Agent {e}"} for u, e in EXTENSIONS.items()]
    replace_directory(engine, users=users)
    rows = load(engine, sample_rows(count, seed=11))
    engine.dispose()
    return rows


@pytest.fixture
def calls(db_url: str) -> tuple[str, Rows]:
    return db_url, loaded(db_url)


@pytest.fixture
def api(calls: tuple[str, Rows]) -> Iterator[tuple[httpx.Client, Rows]]:
    url, rows = calls
    settings = Settings(db=url, api_token=ADMIN, scoped_tokens=SCOPES)
    with app_client(settings) as client:
        yield client, rows


def ask(client: httpx.Client, token: str, params: dict[str, Any]) -> httpx.Response:
    return client.post("/api/cdr", json=params, headers={"Authorization": f"Bearer {token}"})


def pages_of(client: httpx.Client, token: str, filters: dict[str, Any]) -> tuple[int, list[int]]:
    """The row_count and the ids of every page, as the vendor's loop reads them."""
    ids: list[int] = []
    page = 1
    while True:
        response = ask(client, token, {"page": page, "filters": filters})
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [int(record["id"]) for record in body["results"]]
        if page >= body["pagination"]["max_page"]:
            return body["pagination"]["row_count"], ids
        page += 1


def test_a_scoped_token_sees_its_calls_as_one_more_filter(api: tuple[httpx.Client, Rows]) -> None:
    client, rows = api
    for filters in FILTERS:
        for scope in SCOPES:
            expected = [row["id"] for row in rows if oracle(row, filters) and sees(scope, row)]
            assert pages_of(client, scope.token, filters) == (len(expected), expected)
        everything = [row["id"] for row in rows if oracle(row, filters)]
        assert pages_of(client, ADMIN, filters) == (len(everything), everything)
    # Each scope keeps some calls and leaves some out; one spans several pages.
    counts = [pages_of(client, scope.token, {})[0] for scope in SCOPES]
    assert all(0 < count < len(rows) for count in counts) and max(counts) > 100


def test_no_request_parameter_widens_a_scope(api: tuple[httpx.Client, Rows]) -> None:
    client, rows = api
    token = SCOPES[0].token  # project 2
    in_scope = [row["id"] for row in rows if row["project_id"] == 2]
    # Naming the scope's own filters is refused, in a JSON body, a form and a query string.
    widen = {"filters": {"project_scope": [1, 2], "extension_scope": ["101"]}}
    messages = ["Invalid filter: project_scope", "Invalid filter: extension_scope"]
    assert assert_envelope(ask(client, token, widen), 400) == messages
    auth = {"Authorization": f"Bearer {token}"}
    form = client.post("/api/cdr", content=http_build_query(widen), headers=auth)
    assert assert_envelope(form, 400) == messages
    query = client.get("/api/cdr", params=http_build_query(widen), headers=auth)
    assert assert_envelope(query, 400) == messages
    # Another project is one more filter: nothing is both.
    other = ask(client, token, {"filters": {"project_id": [1]}}).json()
    assert other["pagination"]["row_count"] == 0 and other["results"] == []
    both = ask(client, token, {"filters": {"project_id": [1, 2]}}).json()
    assert both["pagination"]["row_count"] == len(in_scope)
    # Top-level keys of the scope's or the settings' names are not filters: still scoped.
    extra = {"project_scope": [1], "projects": [1], "scoped_tokens": [], "token": ADMIN}
    assert ask(client, token, extra).json()["pagination"]["row_count"] == len(in_scope)
    # A call out of scope cannot be reached by its id either.
    outside = next(row for row in rows if row["project_id"] != 2)
    by_id = ask(client, token, {"filters": {"uniqueid": outside["uniqueid"]}}).json()
    assert by_id["pagination"]["row_count"] == 0
    # A second token in the header is no token.
    two = {"Authorization": f"Bearer {token}, Bearer {ADMIN}"}
    assert assert_envelope(client.post("/api/cdr", json={}, headers=two), 401)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Bearer project-tw", "Bearer project-two2", "Basic project-two"],
)
def test_a_bad_token_gets_the_same_401(
    api: tuple[httpx.Client, Rows], authorization: str | None
) -> None:
    client, _ = api
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post("/api/cdr", json={}, headers=headers)
    assert assert_envelope(response, 401) == [
        "Unauthorized: a valid 'Authorization: Bearer <token>' is required"
    ]
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_scoped_token_signs_with_the_api_key(calls: tuple[str, Rows]) -> None:
    url, rows = calls
    settings = Settings(db=url, api_token=ADMIN, api_key="k3y", scoped_tokens=SCOPES)
    params: dict[str, Any] = {"page": 1, "filters": {"direction": "IN"}}
    expected = [row for row in rows if row["direction"] == "IN" and sees(SCOPES[1], row)]
    with app_client(settings) as client:
        unsigned = ask(client, SCOPES[1].token, params)
        assert assert_envelope(unsigned, 403) == ["Invalid api_hash"]
        signed = ask(client, SCOPES[1].token, {**params, "api_hash": sign(params, "k3y")})
        assert signed.json()["pagination"]["row_count"] == len(expected)


def test_the_vendor_php_client_with_a_scoped_token(tmp_path: Path, serve: Serve) -> None:
    need(shutil.which("php") is not None, "php-cli is not installed")
    url = f"sqlite:///{tmp_path / 'cdrapi.db'}"
    rows = loaded(url, 700)
    expected = [
        (str(row["id"]), row["uniqueid"], row["time"])
        for row in rows
        if "2024-01-01 00:00:00" <= row["time"] <= "2024-01-15 23:59:59" and sees(SCOPES[0], row)
    ]
    assert len(expected) > 100  # several pages
    scopes = [SCOPES[0]]
    settings = Settings(db=url, api_token=ADMIN, api_key="your_api_key", scoped_tokens=scopes)
    with serve(settings) as base:
        result = run_client(base, SCOPES[0].token, "your_api_key")
    assert result.returncode == 0, result.stderr
    assert [tuple(line.split("\t")) for line in result.stdout.splitlines()] == expected


CONFIG = """
db = "{db}"

[[tokens]]
token = "s3cret-support"
projects = [2]

[[tokens]]
token = "agents"
extensions = ["101", "102"]
"""


def test_cdrapi_serve_gives_every_worker_the_scoped_tokens(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cdrapi.db'}"
    rows = loaded(db, 200)
    config = tmp_path / "cdrapi.toml"
    config.write_text(CONFIG.format(db=db))
    support = sum(1 for row in rows if row["project_id"] == 2)
    command = [CDRAPI, "serve", "--config", str(config), "--workers", "2"]
    with served(command, ADMIN) as (base, leader):
        deadline = time.monotonic() + 20
        while len(workers_of(leader)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # served() waited for one worker; the other is starting
        workers = workers_of(leader)
        assert len(workers) == 2
        for _ in range(8):  # new connections, taken by either worker
            answer = httpx.post(
                f"{base}/api/cdr", json={}, headers={"Authorization": "Bearer s3cret-support"}
            )
            assert answer.json()["pagination"]["row_count"] == support
        everything = httpx.post(f"{base}/api/cdr", headers={"Authorization": f"Bearer {ADMIN}"})
        assert everything.json()["pagination"]["row_count"] == len(rows)
        assert workers_of(leader) == workers  # neither failed to start and was replaced


@pytest.mark.parametrize(
    ("tables", "error"),
    [
        (
            '[[tokens]]\ntoken = "t1"\nprojects = [1]\n\n[[tokens]]\ntoken = "t2"\n',
            "Error: invalid configuration: [[tokens]] table 2: a scoped token needs "
            "`projects` or `extensions` (a token that sees every call belongs in api_token)",
        ),
        (
            '[[tokens]]\ntoken = "t1"\nprojects = [1]\n\n[[tokens]]\ntoken = "t1"\n'
            'extensions = ["101"]\n',
            "Error: invalid configuration: [[tokens]] tables 1 and 2 give the same token",
        ),
        (
            'api_token = "a, t1"\n[[tokens]]\ntoken = "t1"\nprojects = [1]\n',
            "Error: invalid configuration: [[tokens]] table 1: its token is also in api_token "
            "(CDRAPI_API_TOKEN), which sees every call: give it one place",
        ),
        (
            '[[tokens]]\ntoken = "t1"\nextensions = ["1 01"]\n',
            "Error: invalid configuration: [[tokens]] table 1: extensions.0: expected text "
            "without spaces or commas, at most 80 characters",
        ),
    ],
)
def test_a_bad_scoped_token_is_one_line_from_cdrapi_serve(
    tmp_path: Path, tables: str, error: str
) -> None:
    config = tmp_path / "cdrapi.toml"
    config.write_text(f'db = "sqlite:///{tmp_path / "cdrapi.db"}"\n{tables}')
    result = subprocess.run(
        [CDRAPI, "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [error]
    assert not (tmp_path / "cdrapi.db").exists()  # refused before anything was made
