"""The dashboard in a real browser: Debian's chromium driven by Playwright against the app
under uvicorn on loopback. Sign in, open the dashboard of a month: both charts draw
(uPlot's canvas), without a console error, and the values they plot are those of SQL
written here (SQLite's own "bare column of min()" for a call's first leg, not the app's
statement); the tables open from the keyboard; at phone width (390 px) nothing is wider
than the screen; axe-core finds no serious or critical violation (desktop, phone, dark
scheme). Screenshots at desktop and phone width and in the dark scheme go to
``tests/artifacts/`` and ``/tmp/cdrapi-screens/``, for a person to look at.

One browser for the module; under CI=true a missing chromium fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from cdrapi.settings import Settings
from cdrapi.store.accounts import create_account
from cdrapi.store.directory import replace_directory
from cdrapi.store.engine import connect
from tests.conftest import need
from tests.data import load
from tests.web.test_browser import accessible  # axe-core: no serious or critical violation
from tests.web.test_dashboard import rows

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a long enough password"
SCREENS = [Path(__file__).parents[1] / "artifacts", Path("/tmp/cdrapi-screens")]
MONTH = "from=2024-03-01&to=2024-03-31"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(shutil.which("chromium") is not None or os.path.exists(CHROMIUM),
         "Debian's chromium is not installed (apt-get install chromium)")  # fmt: skip
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def site(tmp_path: Path, serve: Callable[[Settings], Any]) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "cdrapi.db"
    engine = connect(f"sqlite:///{path}")
    load(engine, rows())
    replace_directory(engine, projects=[{"id": 1, "name": "Support"}, {"id": 2, "name": "Sales"}])
    create_account(engine, "admin", PASSWORD)
    engine.dispose()
    settings = Settings(db=f"sqlite:///{path}", api_token="token", timezone="Europe/Bucharest")
    with serve(settings) as base:
        yield base, path


def per_day(path: Path, column: str) -> dict[str, dict[str, int]]:
    """Calls of March 2024 per day by their first leg's ``column`` (a call answered when
    any leg is), in SQL of its own: SQLite takes a bare column from min()'s row."""
    status = "CASE WHEN answered THEN 'ANSWERED' ELSE call_status END"
    value = status if column == "call_status" else column
    sql = f"""
        SELECT substr(first, 1, 10), {value}, count(*) FROM (
            SELECT min(time || printf('%019d', id)) AS first, direction, call_status,
                   max(call_status = 'ANSWERED') AS answered
            FROM calls WHERE time BETWEEN '2024-03-01' AND '2024-03-31 23:59:59'
            GROUP BY linkedid, CASE WHEN linkedid = '' THEN id ELSE 0 END
        ) GROUP BY 1, 2"""
    found: dict[str, dict[str, int]] = {}
    with sqlite3.connect(path) as db:
        for day, name, count in db.execute(sql):
            found.setdefault(name, {})[day] = count
    return found


def shoot(page: Any, name: str, full_page: bool = True) -> None:
    for directory in SCREENS:
        directory.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(directory / f"{name}.png"), full_page=full_page)


def sign_in(page: Any, base: str, target: str) -> list[str]:
    """Signs in on its way to ``target``; returns the list the page's errors go to."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{base}{target}")
    assert "/login" in page.url
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{base}{target}")
    return errors


def test_the_charts_plot_what_sql_counts(browser: Any, site: tuple[str, Path]) -> None:
    base, path = site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = sign_in(page, base, f"/dashboard?{MONTH}")
    page.wait_for_function("window.cdrapiCharts && window.cdrapiCharts.length === 2")
    for key in ("by_direction", "by_status"):
        assert page.locator(f"#chart-{key} canvas").count() == 1, key
        box = page.locator(f"#chart-{key} canvas").bounding_box()
        assert box and box["width"] > 600 and box["height"] > 100
    plotted = page.evaluate(
        """() => Object.fromEntries(window.cdrapiCharts.map(chart => [chart.cdrapiKey,
             chart.series.slice(1).map((s, i) => [s.label, chart.data[i + 1]])]))"""
    )
    days = page.evaluate("JSON.parse(document.getElementById('dashboard-data').textContent)")
    labels = {"IN": "In", "OUT": "Out", "INTERNAL": "Internal", "ANSWERED": "Answered",
              "NO ANSWER": "Missed", "BUSY": "Busy", "FAILED": "Failed",
              "CONGESTION": "Congestion"}  # fmt: skip
    for key, column in (("by_direction", "direction"), ("by_status", "call_status")):
        counted = per_day(path, column)
        want = {
            labels[name]: [counted.get(name, {}).get(day, 0) for day in days["buckets"]]
            for name, _ in days[key]
        }
        assert plotted[key] == [[name, counts] for name, counts in want.items()], key
        assert sum(sum(series) for series in want.values()) == 160
    assert len(days["buckets"]) == 31
    assert errors == []
    shoot(page, "dashboard-desktop")

    # The tables behind the charts, from the keyboard: folded once drawn, opened by Enter.
    summary = page.locator("#chart-by_status + details.data > summary")
    assert page.locator("#table-by_status").is_visible() is False
    summary.focus()
    page.keyboard.press("Enter")
    assert page.locator("#table-by_status").is_visible()
    # A change of the search: htmx fetches the figures alone, the charts are drawn again.
    page.check("input[name=direction][value=OUT]")
    page.wait_for_function("document.getElementById('fig-calls').textContent === '40'")
    page.wait_for_function("window.cdrapiCharts.length === 2 && window.cdrapiCharts[0].data"
                           "[1].reduce((a, b) => a + b, 0) === 0")  # fmt: skip
    assert "direction=OUT" in page.url
    out = page.evaluate("window.cdrapiCharts[0].series.map(s => s.label)")
    assert out[1:] == ["In", "Out", "Internal"]
    page.click("nav a:has-text('Calls')")  # the call log, with the same search
    page.wait_for_url("**/?*direction=OUT*")
    assert page.locator("#call-count").inner_text() == "40"
    page.go_back()
    page.wait_for_function("window.cdrapiCharts && window.cdrapiCharts.length === 2")
    accessible(page)
    context.close()


def test_phone_width(browser: Any, site: tuple[str, Path]) -> None:
    base, _ = site
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    errors = sign_in(page, base, f"/dashboard?{MONTH}")
    page.wait_for_function("window.cdrapiCharts && window.cdrapiCharts.length === 2")
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 390, wide  # no sideways scrolling: wide tables scroll in their box
    box = page.locator("#chart-by_direction canvas").bounding_box()
    assert box and box["width"] <= 390
    shoot(page, "dashboard-phone", full_page=False)
    page.locator("#key-figures").scroll_into_view_if_needed()
    shoot(page, "dashboard-phone-figures", full_page=False)
    page.locator("#heat-title").scroll_into_view_if_needed()
    shoot(page, "dashboard-phone-tables", full_page=False)
    shoot(page, "dashboard-phone-full")
    accessible(page)
    assert errors == []
    context.close()


def test_dark_scheme(browser: Any, site: tuple[str, Path]) -> None:
    base, _ = site
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    page = context.new_page()
    errors = sign_in(page, base, f"/dashboard?{MONTH}")
    page.wait_for_function("window.cdrapiCharts && window.cdrapiCharts.length === 2")
    accessible(page)
    shoot(page, "dashboard-dark")
    assert errors == []
    context.close()
