"""The dashboard's warm-up (web/dashboard.py DashboardWarmup, store/dashboard.py count,
store/dashboard_days.py claims): a server started on a store whose figures were never
counted (a demo just made) counts the last 30 and 365 days in the background, unscoped
and for each account's project scope, so that the first views count no day and show the
figures a fresh count gives; a view that arrives while the warm-up counts its days waits
for them instead of counting them too, and is right; a shutdown during the warm-up ends
its statement under way (a long one, really running) and leaves no thread and no error;
the setting turns it off; a real ``cdrapi serve`` saves the figures and stops cleanly.
On SQLite and PostgreSQL (where the statement is ended by a cancel request)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, text
from starlette.applications import Starlette

from cdrapi.demo import generate
from cdrapi.server.app import create_app
from cdrapi.settings import Settings
from cdrapi.store.accounts import create_account
from cdrapi.store.dashboard import Dashboard, DashboardReader
from cdrapi.store.engine import connect
from cdrapi.web.dashboard import DEFAULT_DAYS, YEAR_DAYS, DashboardWarmup, dashboard_warmup
from cdrapi.web.shown import pbx_now
from tests.conftest import app_client, free_port
from tests.web.test_dashboard import PASSWORD, check_page, signed_in

THREAD = "cdrapi-dashboard-warmup"
CDRAPI = str(Path(sys.executable).parent / "cdrapi")


def demo_store(url: str) -> Settings:
    """A store just made by the demo (370 days up to today), never shown: an admin, an
    account scoped to project 2 (its days are saved) and one to extensions (not saved)."""
    engine = connect(url)
    generate(engine, calls=1500, days=370, seed=11, end=pbx_now("local").date())
    create_account(engine, "admin", PASSWORD)
    create_account(engine, "sales", PASSWORD, project_ids=[2])
    create_account(engine, "agent", PASSWORD, extensions=["101"])
    engine.dispose()
    return Settings(db=url, api_token="token")


@pytest.fixture(scope="module")
def sqlite_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite demo store, made once: each test gets a copy of it."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    demo_store(f"sqlite:///{path}")
    return path


@pytest.fixture
def store(db_url: str, backend: str, sqlite_demo: Path, tmp_path: Path) -> Settings:
    if backend == "postgresql":
        return demo_store(db_url)
    copy = tmp_path / "copy.db"
    shutil.copyfile(sqlite_demo, copy)  # (no -wal left: every engine was disposed)
    return Settings(db=f"sqlite:///{copy}", api_token="token")


def warm_app(settings: Settings) -> tuple[Starlette, DashboardWarmup]:
    """The app as ``cdrapi serve``'s worker makes it, and its warm-up."""
    app = create_app(settings, warm_up=True)
    warmup = dashboard_warmup(app.routes)
    assert warmup is not None
    return app, warmup


def period(days: int) -> dict[str, str]:
    today = pbx_now("local").date()
    return {"from": str(today - dt.timedelta(days=days - 1)), "to": str(today)}


def fresh_count(settings: Settings, days: int, *, scoped: bool = False) -> Dashboard:
    """The figures of the last ``days`` days (of project 2: ``scoped``) counted anew from
    the calls, the saved days deleted first."""
    engine = connect(settings.db, create=False)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM dashboard_days"))
        reader = DashboardReader(engine)
        # the searches: the unscoped one and project 2's (an extension scope is not saved)
        searches = DashboardWarmup(settings, reader).searches(days, pbx_now("local").date())
        assert [getattr(filters, "project_scope", ()) for filters in searches] == [(), (2,)]
        board = reader.figures(searches[scoped], pbx_now("local"))
        assert reader.read_days == days  # (really counted)
        return board
    finally:
        engine.dispose()


def saved(settings: Settings) -> dict[str, int]:
    engine = connect(settings.db, create=False)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT search, count(*) FROM dashboard_days GROUP BY 1"))
            return {str(search): int(n) for search, n in rows}
    finally:
        engine.dispose()


def test_after_the_warm_up_the_first_views_count_no_day(store: Settings) -> None:
    app, warmup = warm_app(store)
    pages: dict[tuple[str, int], str] = {}
    with app_client(app) as http:
        assert warmup.done.wait(60)
        counted = warmup.reader.read_days
        assert counted == 2 * YEAR_DAYS  # the year, unscoped and for project 2, once each
        for name in ("admin", "sales", "agent"):
            http.cookies.clear()
            signed_in(http, name)
            pages[name, DEFAULT_DAYS] = http.get("/dashboard").text  # the default period
            pages[name, YEAR_DAYS] = http.get("/dashboard", params=period(YEAR_DAYS)).text
        counted_by_views = warmup.reader.read_days - counted
    # the extensions' scope is not warmed (not saved): its two views counted their days
    assert counted_by_views == YEAR_DAYS
    assert saved(store) == {"calls": YEAR_DAYS, "project_scope=2": YEAR_DAYS}
    for days in (DEFAULT_DAYS, YEAR_DAYS):
        board = fresh_count(store, days)
        assert board.calls > 100 and board.missed > 0  # (a real test)
        check_page(pages["admin", days], board)
        scoped = fresh_count(store, days, scoped=True)
        assert 0 < scoped.calls < board.calls
        check_page(pages["sales", days], scoped)


def test_a_view_during_the_warm_up_waits_for_its_days_and_is_right(
    store: Settings,
) -> None:
    app, warmup = warm_app(store)
    engine: Engine = warmup.reader.engine
    inside, go = threading.Event(), threading.Event()

    def pause(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # the warm-up's first count (the default period, unscoped), holding its days
        warming = threading.current_thread().name == THREAD
        if warming and "user_fullname" in statement and not inside.is_set():
            inside.set()
            assert go.wait(30)

    event.listen(engine, "before_cursor_execute", pause)
    with app_client(app) as http, concurrent.futures.ThreadPoolExecutor(2) as pool:
        signed_in(http, "admin")
        assert inside.wait(30)
        view = pool.submit(http.get, "/dashboard")  # the default period: being counted
        time.sleep(0.5)
        assert not view.done()  # waiting for the warm-up's days, not counting them
        # ... without holding the store's thread (SQLite's only one): the call log answers
        calllog = pool.submit(http.get, "/", params=period(DEFAULT_DAYS))
        assert calllog.result(10).status_code == 200
        assert not view.done()
        go.set()
        page = view.result(30).text
        assert warmup.done.wait(60)
        # every day counted once: the view counted none of its own
        assert warmup.reader.read_days == 2 * YEAR_DAYS
    check_page(page, fresh_count(store, DEFAULT_DAYS))


def test_a_shutdown_during_the_warm_up_ends_it_cleanly(
    store: Settings, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The warm-up's connection runs a statement that would last minutes: the shutdown
    ends it (SQLite: interrupted; PostgreSQL: cancelled), in well under a second."""
    app, warmup = warm_app(store)
    running = threading.Event()
    long = (
        "SELECT pg_sleep(120)"
        if backend == "postgresql"
        else "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 10000000000)"
        " SELECT count(*) FROM n"
    )

    def meanwhile(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        warming = threading.current_thread().name == THREAD
        if warming and "FROM dashboard_marks" in statement and not running.is_set():
            running.set()
            cursor.execute(long)  # on the warm-up's own connection, within its read

    event.listen(warmup.reader.engine, "before_cursor_execute", meanwhile)
    caplog.set_level(logging.INFO)
    with app_client(app):
        assert running.wait(30)
        time.sleep(0.2)  # (the statement under way)
        stopping = time.monotonic()
    took = time.monotonic() - stopping
    assert took < 5 and warmup.done.is_set()
    assert THREAD not in [thread.name for thread in threading.enumerate()]
    messages = [record.getMessage() for record in caplog.records]
    assert "dashboard warm-up stopped by the shutdown" in messages
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    # the store is as it was: a server started again warms up and shows the right figures
    app, warmup = warm_app(store)
    with app_client(app) as http:
        assert warmup.done.wait(60)
        page = signed_in(http, "admin").get("/dashboard").text
        assert warmup.reader.read_days == 2 * YEAR_DAYS
    check_page(page, fresh_count(store, DEFAULT_DAYS))


def test_the_setting_turns_the_warm_up_off(store: Settings) -> None:
    app, warmup = warm_app(store.model_copy(update={"dashboard_warmup": False}))
    with app_client(app):
        time.sleep(0.5)
        assert not warmup.done.is_set()
        assert THREAD not in [thread.name for thread in threading.enumerate()]
    assert saved(store) == {}


def stopped(server: subprocess.Popen[bytes]) -> None:
    """``server`` stopped as Ctrl-C does: it ends at once, with no error."""
    server.send_signal(signal.SIGINT)
    _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert b"Traceback" not in err and b"locked" not in err, err


def test_cdrapi_serve_saves_the_figures_and_stops_cleanly(
    sqlite_demo: Path, tmp_path: Path
) -> None:
    shutil.copyfile(sqlite_demo, tmp_path / "demo.db")
    store = Settings(db=f"sqlite:///{tmp_path / 'demo.db'}", api_token="token")
    port = free_port()
    env = {**os.environ, "CDRAPI_API_TOKEN": "token"}
    command = [CDRAPI, "serve", "--db", store.db, "--port", str(port), "--no-access-log"]
    for stop_at_once in (False, True):
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 60
            while True:  # answering at once (the warm-up delays no start)
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and server.poll() is None
                    time.sleep(0.05)
            assert answer.status_code == 200
            while not stop_at_once and saved(store).get("project_scope=2", 0) < YEAR_DAYS:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        finally:
            stopped(server)
        assert saved(store) == {"calls": YEAR_DAYS, "project_scope=2": YEAR_DAYS}
