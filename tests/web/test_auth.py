"""Signing in to the web call log as a browser does, against the real routes in process:
the form, the session cookie and its flags, wrong passwords and the rate limit, sign-out
and its CSRF token, cookies tampered with or outlived, sessions ended by a new password
or a disabled account, and requests from other sites."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from cdrapi.settings import Settings
from cdrapi.store.accounts import create_account, disable_account, remove_account, set_password
from cdrapi.store.engine import connect
from cdrapi.store.executor import StoreExecutor
from cdrapi.web.auth import current_account, sign_in_routes, templates
from cdrapi.web.sessions import COOKIE
from tests.conftest import APP_URL, app_client

PASSWORD = "correct horse battery"
WRONG = "Wrong username or password."


def web_app(settings: Settings) -> Starlette:
    """The sign-in routes mounted as the web pages mount them, and a page that needs a
    signed-in account (as the call log does)."""
    engine = connect(settings.db, create=False)
    database = StoreExecutor(engine)

    async def calls(request: Request) -> Response:
        account = current_account(request)
        if account is None:
            return RedirectResponse("/login?next=/", 303)
        text = f"The calls {account.username} may see: projects {list(account.project_ids)}"
        return templates.TemplateResponse(
            request, "message.html", {"title": "Calls", "message": text}
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        database.close()
        engine.dispose()

    routes = [*sign_in_routes(settings, database), Route("/", calls)]
    return Starlette(routes=routes, lifespan=lifespan)


def settings_for(db: str, **values: Any) -> Settings:
    return Settings(db=db, **values)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cdrapi.db'}"
    engine = connect(url)
    create_account(engine, "sales", PASSWORD, project_ids=[2])
    engine.dispose()
    return url


@contextlib.contextmanager
def browser(db: str, **values: Any) -> Iterator[httpx.Client]:
    with app_client(web_app(settings_for(db, **values))) as client:
        yield client


def sign_in(
    client: httpx.Client, username: str = "sales", password: str = PASSWORD
) -> httpx.Response:
    return client.post("/login", data={"username": username, "password": password})


def shown_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_sign_in_then_the_pages_show_the_account(db_url: str) -> None:
    engine = connect(db_url)
    create_account(engine, "sales", PASSWORD, project_ids=[2])
    engine.dispose()
    with browser(db_url) as client:
        assert client.get("/").headers["location"] == "/login?next=/"
        form = client.get("/login?next=/")
        assert form.status_code == 200 and form.headers["cache-control"] == "no-store"
        for field in ("username", "password"):  # labelled, in this order
            assert f'<label for="{field}">' in form.text and f'id="{field}"' in form.text
        assert form.text.index('id="username"') < form.text.index('id="password"')
        assert '<html lang="en">' in form.text and 'name="viewport"' in form.text

        signed = sign_in(client)
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        page = client.get("/")
        assert page.status_code == 200
        assert "The calls sales may see: projects [2]" in page.text
        assert "Signed in as <strong>sales</strong>" in page.text
        assert '<form method="post" action="/logout">' in page.text and shown_token(page.text)
        assert client.get("/login").headers["location"] == "/"  # already signed in


def test_the_session_cookie_flags(sqlite_db: str) -> None:
    with browser(sqlite_db, web_session_max_age=3600) as client:
        cookie = sign_in(client).headers["set-cookie"]
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert cookie.startswith(f"{COOKIE}=")
        assert {"httponly", "max-age", "path", "samesite"} <= flags and "secure" not in flags
        assert "Max-Age=3600" in cookie and "Path=/" in cookie and "SameSite=strict" in cookie
        over_https = client.post(
            "https://cdrapi.test/login", data={"username": "sales", "password": PASSWORD}
        )
        assert "; secure" in over_https.headers["set-cookie"].lower()
    with browser(sqlite_db, public_url="https://pbx.example.com") as client:
        assert "; secure" in sign_in(client).headers["set-cookie"].lower()  # behind TLS


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(sqlite_db: str) -> None:
    with browser(sqlite_db) as client:
        wrong, unknown = sign_in(client, password="not it at all"), sign_in(client, "nobody")
        for answer in (wrong, unknown):
            assert answer.status_code == 401 and WRONG in answer.text
            assert "set-cookie" not in answer.headers
        assert 'value="nobody"' in unknown.text  # the name is kept, the password is not
        assert PASSWORD not in unknown.text
        empty = client.post("/login", data={"username": "sales"})
        assert empty.status_code == 400 and "Enter your username and password." in empty.text
        assert client.get("/").status_code == 303


def test_failed_sign_ins_are_limited_per_username_and_per_address(sqlite_db: str) -> None:
    with browser(sqlite_db, web_signin_failures=3, web_signin_window=2) as client:
        for _ in range(3):
            assert sign_in(client, password="guess guess").status_code == 401
        limited = sign_in(client)  # even the right password waits now
        assert limited.status_code == 429 and "set-cookie" not in limited.headers
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert "Too many failed sign-ins" in limited.text
        time.sleep(2.1)
        assert sign_in(client).status_code == 303  # the window passed

    with browser(sqlite_db, web_signin_failures=3, web_signin_window=60) as client:
        for name in ("ghost", "phantom", "spectre"):  # names that do not exist: same count
            assert sign_in(client, name).status_code == 401
        other = sign_in(client, "sales")  # a fourth name from the same address
        assert other.status_code == 429 and 55 <= int(other.headers["retry-after"]) <= 60
        same_text = sign_in(client, "ghost")
        assert same_text.status_code == 429
        assert same_text.text.replace("ghost", "sales") == other.text  # says nothing of who exists


def test_sign_out_needs_the_sessions_token(sqlite_db: str) -> None:
    with browser(sqlite_db) as client:
        sign_in(client)
        token = shown_token(client.get("/").text)
        for data in ({}, {"csrf_token": "forged" + token}):
            refused = client.post("/logout", data=data)
            assert refused.status_code == 403 and "out of date" in refused.text
            assert client.get("/").status_code == 200  # still signed in
        out = client.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert f'{COOKIE}=""' in out.headers["set-cookie"]
        assert "Max-Age=0" in out.headers["set-cookie"]
        assert client.get("/").headers["location"] == "/login?next=/"


def test_a_cookie_tampered_with_signed_elsewhere_or_outlived_is_refused(sqlite_db: str) -> None:
    with browser(sqlite_db, web_secret="the key", web_session_max_age=3600) as client:
        sign_in(client)
        good = client.cookies[COOKIE]
        payload, _, rest = good.partition(".")
        swapped = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
        elsewhere = URLSafeTimedSerializer("another key", salt="cdrapi.web.session")

        class Earlier(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - 3601

        outlived = URLSafeTimedSerializer("the key", salt="cdrapi.web.session", signer=Earlier)
        claims = {"a": 1, "g": 0, "c": "token"}
        for forged in (
            f"{swapped}.{rest}",
            "not a cookie",
            elsewhere.dumps(claims),
            outlived.dumps(claims),
        ):
            client.cookies.clear()
            client.cookies.set(COOKIE, forged)
            assert client.get("/").status_code == 303, forged
        client.cookies.clear()
        client.cookies.set(COOKIE, good)
        assert client.get("/").status_code == 200  # the genuine one still holds


def test_a_new_password_or_disabling_ends_the_sessions(sqlite_db: str) -> None:
    engine = connect(sqlite_db)
    try:
        with browser(sqlite_db) as client, browser(sqlite_db) as other_device:
            sign_in(client)
            sign_in(other_device)
            set_password(engine, "sales", "a brand new secret")  # cdrapi user passwd
            assert client.get("/").status_code == 303
            assert other_device.get("/").status_code == 303
            assert sign_in(client, password="a brand new secret").status_code == 303
            assert client.get("/").status_code == 200
            disable_account(engine, "sales")
            assert client.get("/").status_code == 303
            assert sign_in(client, password="a brand new secret").status_code == 401
    finally:
        engine.dispose()


def test_a_removed_accounts_session_is_no_one_elses(db_url: str) -> None:
    engine = connect(db_url)
    try:
        create_account(engine, "sales", PASSWORD, project_ids=[2])
        with browser(db_url) as client:
            sign_in(client)
            remove_account(engine, "sales")
            assert client.get("/").status_code == 303
            # The next account made (same name or not) does not inherit the session.
            create_account(engine, "intern", PASSWORD, project_ids=[1])
            create_account(engine, "sales", PASSWORD, project_ids=[1])
            assert client.get("/").status_code == 303
    finally:
        engine.dispose()


def test_requests_from_other_sites_are_refused(sqlite_db: str) -> None:
    with browser(sqlite_db) as client:
        data = {"username": "sales", "password": PASSWORD}
        for headers in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
        ):
            refused = client.post("/login", data=data, headers=headers)
            assert refused.status_code == 403 and "set-cookie" not in refused.headers
        for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": APP_URL}):
            assert client.post("/login", data=data, headers=headers).status_code == 303
        token = shown_token(client.get("/").text)
        cross = client.post(
            "/logout", data={"csrf_token": token}, headers={"Origin": "https://x.y"}
        )
        assert cross.status_code == 403 and client.get("/").status_code == 200


def test_a_link_from_another_site_reloads_once_to_send_the_cookie(sqlite_db: str) -> None:
    with browser(sqlite_db) as client:
        followed = client.get("/login?next=/", headers={"Sec-Fetch-Site": "cross-site"})
        assert (
            '<meta http-equiv="refresh" content="0; url=/login?next=%2F&amp;again=1">'
            in followed.text
        )
        again = client.get("/login?next=%2F&again=1", headers={"Sec-Fetch-Site": "cross-site"})
        assert "http-equiv" not in again.text  # once only, whatever the browser says
        sign_in(client)
        assert client.get("/login?next=%2F&again=1").headers["location"] == "/"


def test_where_to_go_after_signing_in(sqlite_db: str) -> None:
    with browser(sqlite_db) as client:
        form = client.get("/login", params={"next": "/calls?direction=IN"})
        assert 'name="next" value="/calls?direction=IN"' in form.text
        for given, expected in (
            ("/calls?direction=IN", "/calls?direction=IN"),
            ("//evil.example/", "/"),
            ("https://evil.example/", "/"),
            ("/\\evil.example", "/"),
            ("/logout", "/"),
        ):
            client.cookies.clear()
            data = {"username": "sales", "password": PASSWORD, "next": given}
            assert client.post("/login", data=data).headers["location"] == expected, given


def test_only_login_and_logout_sign_in_and_out(sqlite_db: str) -> None:
    """The fixed interface is /login and /logout: no other path signs anyone in or out."""
    with browser(sqlite_db) as client:
        data = {"username": "sales", "password": PASSWORD}
        for method, path in (("GET", "/signin"), ("POST", "/signin"), ("POST", "/signout")):
            answer = client.request(method, path, data=data if method == "POST" else None)
            assert answer.status_code == 404 and "set-cookie" not in answer.headers, path
        assert sign_in(client).status_code == 303
        token = shown_token(client.get("/").text)
        assert client.post("/signout", data={"csrf_token": token}).status_code == 404
        assert client.get("/").status_code == 200  # still signed in


def test_a_store_that_cannot_be_read_is_503_not_a_traceback(tmp_path: Path) -> None:
    with browser(f"sqlite:///{tmp_path / 'missing.db'}") as client:
        answer = sign_in(client)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert "cannot be read" in answer.text


def test_an_oversized_form_is_refused(sqlite_db: str) -> None:
    with browser(sqlite_db) as client:
        answer = client.post("/login", data={"username": "sales", "password": "x" * 20_000})
        assert answer.status_code == 413
