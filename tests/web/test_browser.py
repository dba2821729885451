"""The call log in a real browser: Debian's chromium driven by Playwright against
``cdrapi serve`` on loopback, once for the module, with a small demo store (a week of
calls up to today, playable audio for the last two days' recordings) and no recording
secret configured (``cdrapi serve`` makes one).

Sign in, search a number (htmx updates the results; the counts are the API's), reach the
results with the keyboard and open a call, play its recording (the server answers the
audio element's Range requests with 206, and seeking moves ``currentTime``); every filter
of the form shows the count ``/api/cdr`` gives for the same filters; the export's records
are the API's; an account scoped to one project never sees another project's call, not
even by typing its URL (the call view, the export, the recordings); axe-core (vendored
from its npm package, ``tests/web/vendor/``) finds no serious or critical violation on
any page. Screenshots of every page at desktop and phone width (390 px) go to
``tests/artifacts/`` and ``/tmp/cdrapi-screens/``, for a person to look at.

One browser and one server for the module; under CI=true a missing chromium fails
instead of skipping.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import sync_playwright

from cdrapi.demo import generate
from cdrapi.demo.audio import write_recordings
from cdrapi.protocol.records import RECORD_KEYS
from cdrapi.store.accounts import create_account
from cdrapi.store.engine import connect
from tests.conftest import need
from tests.server.conftest import CDRAPI, served

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PASSWORD = "a long enough password"
TOKEN, SCOPED_TOKEN = "browser-admin-token", "browser-project-two"
ZONE = "Europe/Bucharest"
SCREENS = [Path(__file__).parents[1] / "artifacts", Path("/tmp/cdrapi-screens")]
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
Records = list[dict[str, Any]]


@dataclass(frozen=True)
class Site:
    base: str
    today: dt.date
    records: Records  # every record, as the API gives them

    def api(self, filters: dict[str, Any], token: str = TOKEN) -> tuple[int, Records]:
        """``/api/cdr``'s row_count for ``filters`` and all its records (every page)."""
        found: Records = []
        page = 1
        while True:
            answer = httpx.post(
                f"{self.base}/api/cdr", json={"filters": filters, "page": page},
                headers={"Authorization": f"Bearer {token}"}, timeout=30,
            )  # fmt: skip
            body = answer.json()
            assert answer.status_code == 200, body
            found.extend(body["results"])
            if page >= body["pagination"]["max_page"]:
                return body["pagination"]["row_count"], found
            page += 1


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(shutil.which("chromium") is not None or os.path.exists(CHROMIUM),
         "Debian's chromium is not installed (apt-get install chromium)")  # fmt: skip
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("browser")
    db = f"sqlite:///{tmp / 'cdrapi.db'}"
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    engine = connect(db)
    generate(engine, calls=1200, days=7, end=today)
    write_recordings(engine, tmp / "recordings", since=today - dt.timedelta(days=6))
    create_account(engine, "admin", PASSWORD)
    create_account(engine, "sales", PASSWORD, project_ids=[2])
    engine.dispose()
    config = tmp / "cdrapi.toml"
    config.write_text(
        f'db = "{db}"\ntimezone = "{ZONE}"\nrecordings_dir = "{tmp / "recordings"}"\n\n'
        f'[[tokens]]\ntoken = "{SCOPED_TOKEN}"\nprojects = [2]\n'
    )
    with served([CDRAPI, "serve", "--config", str(config)], TOKEN) as (base, _):
        everything = Site(base, today, [])
        _, records = everything.api({})
        yield Site(base, today, records)


def shoot(page: Any, name: str, full_page: bool = True) -> None:
    for directory in SCREENS:
        directory.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(directory / f"{name}.png"), full_page=full_page)


def accessible(page: Any) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    page.add_script_tag(content=AXE.read_text())
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))"""
    )
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not bad, f"{page.url}: {bad}"


def signed_in(browser: Any, site: Site, user: str = "admin", **options: Any) -> Any:
    context = browser.new_context(viewport=options.pop("viewport", DESKTOP), **options)
    page = context.new_page()
    page.goto(f"{site.base}/login?next=/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{site.base}/")
    return page


def order(record: dict[str, Any]) -> tuple[str, int]:
    """A record's place in the call log: (time, id)."""
    return record["time"], int(record["id"])


def seconds(text: str) -> int:
    """``HH:MM:SS`` (the API's durations) in seconds."""
    hours, minutes, secs = map(int, text.split(":"))
    return hours * 3600 + minutes * 60 + secs


def calls_of(records: Records) -> dict[str, list[dict[str, Any]]]:
    """The legs of each call (linkedid, else uniqueid), in (time, id) order."""
    found: dict[str, list[dict[str, Any]]] = {}
    for record in sorted(records, key=order):
        found.setdefault(record["linkedid"] or record["uniqueid"], []).append(record)
    return found


def shown_counts(page: Any) -> tuple[int, int]:
    """The (calls, legs) the results say."""
    text = page.inner_text("#results .counts")
    found = re.search(r"([\d,]+) calls \(([\d,]+) legs\)", text)
    assert found, text
    return int(found[1].replace(",", "")), int(found[2].replace(",", ""))


def wait_for_counts(page: Any, calls: int, legs: int) -> None:
    """Wait until the results say ``calls`` calls of ``legs`` legs (htmx swaps them)."""
    wanted = f"{calls:,} calls ({legs:,} legs)"
    page.wait_for_function(
        "w => (document.querySelector('#results .counts') || {}).textContent"
        "?.replace(/\\s+/g, ' ').includes(w)",
        arg=wanted,
        timeout=8000,
    )


# --- sign in, search, open a call, play it ---------------------------------------------


def target_call(site: Site) -> tuple[str, dict[str, Any]]:
    """A number whose newest call came through a queue and was answered, recorded (with
    audio) and transcribed."""
    calls = calls_of(site.records)
    for key, legs in sorted(calls.items(), key=lambda c: order(c[1][0]), reverse=True):
        leg = legs[0]
        good = leg["recording_file"] and leg["transcription_text"] and leg["user_fullname"]
        if not good or not leg["qname"] or len(legs) > 1:
            continue
        number = leg["source"]
        _, matching = site.api({"telephone_like": number})
        newest = max(calls_of(matching).values(), key=lambda legs: order(legs[0]))
        if (newest[0]["linkedid"] or newest[0]["uniqueid"]) == key:
            return number, leg
    raise AssertionError("the demo has no recorded, transcribed call to play")


def test_sign_in_search_open_a_call_and_play_it(browser: Any, site: Site) -> None:
    number, leg = target_call(site)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    ranged: list[int] = []
    page.on("response", lambda r: ranged.append(r.status) if "/recordings/" in r.url else None)
    page.goto(f"{site.base}/")
    assert "/login" in page.url
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{site.base}/")
    everything = len(calls_of(site.records)), len(site.records)
    assert shown_counts(page) == everything

    page.fill("input[name=telephone_like]", number[-7:])  # htmx: the results alone
    row_count, matching = site.api({"telephone_like": number[-7:]})
    wait_for_counts(page, len(calls_of(matching)), row_count)
    page.wait_for_function(f"location.search.includes('telephone_like={number[-7:]}')")
    assert page.input_value("input[name=telephone_like]") == number[-7:]  # bookmarkable

    page.focus("form#search a[href='/']")  # the form's last control: "Clear"
    page.keyboard.press("Tab")  # the next stop is the first result
    focused = page.evaluate("document.activeElement.closest('#results') !== null")
    assert focused and page.evaluate("document.activeElement.tagName") == "A"
    assert page.evaluate("document.activeElement.textContent") == leg["time"]
    page.keyboard.press("Enter")
    key = leg["linkedid"] or leg["uniqueid"]
    page.wait_for_url(f"**/calls/{key}")
    assert leg["transcription_text"] in page.inner_text("blockquote.transcription")
    assert f"Answered by {leg['user_fullname']}" in page.inner_text("ol.timeline")
    moments = page.locator("ol.timeline li").all_inner_texts()

    def at(what: str) -> int:  # seconds since the start of the moment saying ``what``
        found = next(m for m in moments if what in m)
        minutes, secs = re.search(r"\+(\d+):(\d\d)", found).groups()  # type: ignore[union-attr]
        return int(minutes) * 60 + int(secs)

    waited = seconds(leg["ivr_duration"]) + seconds(leg["hold_time"])
    assert at("Rings ") >= at("Enters queue") and at("Rings ") >= waited  # after the wait
    assert at("Rings ") <= at("Answered by") <= at("Hangs up")

    audio = page.locator("audio").first
    page.wait_for_function("document.querySelector('audio').readyState >= 1", timeout=10_000)
    length = audio.evaluate("a => a.duration")
    assert length == min(45, max(5, -(-seconds(leg["bill_duration"]) // 5) * 5))
    audio.evaluate("a => { a.currentTime = a.duration - 2; }")  # seeking
    page.wait_for_function(
        "(() => { const a = document.querySelector('audio'); "
        "return a.currentTime >= a.duration - 2.1; })()"
    )
    assert 206 in ranged, ranged
    played = audio.evaluate("a => a.play().then(() => true)")  # it plays (headless: muted)
    assert played
    context.close()


# --- every filter: the shown count is the API's ----------------------------------------


def test_each_filter_shows_the_apis_count(browser: Any, site: Site) -> None:
    page = signed_in(browser, site)
    sample = next(r for r in reversed(site.records) if r["user_fullname"] and r["inbound_route_id"])
    day = str(site.today - dt.timedelta(days=2))
    external = next(r["external_id"] for r in site.records if r["external_id"])
    queue = next(r["qname"] for r in site.records if r["qname"])

    def typed(name: str, value: str) -> Callable[[], None]:
        return lambda: page.fill(f"input[name={name}]", value)

    def checked(name: str, value: str) -> Callable[[], None]:
        return lambda: page.check(f"input[name={name}][value='{value}']")

    def chosen(name: str, value: str) -> Callable[[], None]:
        return lambda: page.select_option(f"select[name={name}]", value)

    users = page.eval_on_selector_all(
        "select[name=user_id] option", "o => o.map(x => [x.value, x.textContent])"
    )
    user_id = next(v for v, text in users if text.startswith(sample["user_fullname"] + " ("))

    def more(name: str, value: str) -> Callable[[], None]:
        def act() -> None:
            if not page.locator("details.more").evaluate("d => d.open"):
                page.click("details.more summary")
            page.fill(f"input[name={name}]", value)

        return act

    def hours() -> None:
        page.fill("input[name=hour_from]", "09:00")
        page.fill("input[name=hour_to]", "11:30")

    def dates() -> None:
        page.fill("input[name=from]", day)
        page.fill("input[name=to]", day)

    cases: list[tuple[str, Callable[[], None], dict[str, Any]]] = [
        ("number contains", typed("telephone_like", "072*"), {"telephone_like": "072*"}),
        ("dates", dates, {"date_between": [day, day]}),
        ("hours", hours, {"hour_between": ["09:00", "11:30"]}),
        ("direction", checked("direction", "OUT"), {"direction": ["OUT"]}),
        ("status", checked("call_status", "NO ANSWER"), {"call_status": ["NO ANSWER"]}),
        ("project", chosen("project_id", "2"), {"project_id": [2]}),
        ("user", chosen("user_id", user_id), {"user_id": [int(user_id)]}),
        ("inbound route", chosen("inbound_route_id", str(sample["inbound_route_id"])),
         {"inbound_route_id": [sample["inbound_route_id"]]}),
        ("has recording", chosen("has_recording_file", "yes"), {"has_recording_file": "1"}),
        ("no transcription", chosen("has_transcription", "no"), {"has_transcription": "0"}),
        ("monitor file", chosen("has_monitor_file", "yes"), {"has_monitor_file": "1"}),
        ("number is", more("telephone", sample["source"]), {"telephone": sample["source"]}),
        ("from", more("source", "0372"), {"source": "0372"}),
        ("to", more("destination", "10"), {"destination": "10"}),
        ("uniqueid", more("uniqueid", sample["uniqueid"]), {"uniqueid": sample["uniqueid"]}),
        ("linkedid", more("linkedid", sample["linkedid"]), {"linkedid": sample["linkedid"]}),
        ("external id", more("external_id", external), {"external_id": external}),
        ("from id", more("from_id", site.records[-40]["id"]),
         {"from_id": int(site.records[-40]["id"])}),
    ]  # fmt: skip
    for name, act, filters in cases:
        page.goto(f"{site.base}/")
        act()
        row_count, matching = site.api(filters)
        assert row_count == len(matching) and row_count, name  # something to count
        wait_for_counts(page, len(calls_of(matching)), row_count)
    # the web's own queue picker (no API filter): the legs of that queue
    page.goto(f"{site.base}/")
    chosen("qname", queue)()
    legs = [r for r in site.records if r["qname"] == queue]
    wait_for_counts(page, len(calls_of(legs)), len(legs))
    # the date presets (links), in the PBX's zone
    week = [str(site.today - dt.timedelta(days=6)), str(site.today)]
    yesterday = str(site.today - dt.timedelta(days=1))
    for label, span in (("Today", [str(site.today)] * 2), ("Yesterday", [yesterday] * 2),
                        ("Last 7 days", week)):  # fmt: skip
        page.goto(f"{site.base}/")
        page.click(f"p.presets a:text-is('{label}')")
        row_count, matching = site.api({"date_between": span})
        wait_for_counts(page, len(calls_of(matching)), row_count)
    # every leg instead of calls: the leg count alone
    page.goto(f"{site.base}/?telephone_like=072*")
    page.check("input[name=view][value=legs]")
    page.wait_for_function(
        "n => document.querySelector('#leg-count')?.textContent === n",
        arg=f"{site.api({'telephone_like': '072*'})[0]:,}",
    )
    page.context.close()


# --- the export is the API's records ---------------------------------------------------


def test_the_export_of_a_search_is_the_apis_records(browser: Any, site: Site) -> None:
    page = signed_in(browser, site)
    page.goto(f"{site.base}/?direction=IN&call_status=ANSWERED")
    with page.expect_download() as download:
        page.click("#export-all")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(RECORD_KEYS)
    _, records = site.api({"direction": ["IN"], "call_status": ["ANSWERED"]})

    def cell(value: Any) -> str:
        return "" if value is None else str(value)

    newest_first = sorted(records, key=order, reverse=True)
    expected = [[cell(r[k]) for k in RECORD_KEYS] for r in newest_first]
    # the export's formula guard undone: one apostrophe before ' = + - @ TAB CR goes
    got = [[re.sub(r"^'(?='?[=+\-@\t\r])", "", c) for c in row] for row in rows[1:]]
    assert got == expected
    page.context.close()


# --- a scoped account never sees another project's call --------------------------------


def test_a_scoped_user_never_sees_another_projects_call(browser: Any, site: Site) -> None:
    page = signed_in(browser, site, "sales")
    row_count, mine = site.api({}, SCOPED_TOKEN)  # the scoped token: the same scope
    assert row_count and all(r["project"] == "Vânzări" for r in mine)  # project 2
    assert shown_counts(page) == (len(calls_of(mine)), row_count)
    options = page.eval_on_selector_all(
        "select[name=project_id] option", "o => o.map(x => x.value)"
    )
    assert options == ["", "2"]  # only its project to pick

    recent = str(site.today - dt.timedelta(days=1))  # its recordings have audio
    other = next(
        r for r in reversed(site.records)
        if r["project"] == "Suport Clienți" and r["recording_file"] and r["time"] >= recent
    )  # fmt: skip
    key = other["linkedid"] or other["uniqueid"]
    view = page.goto(f"{site.base}/calls/{key}")
    assert view.status == 404 and "No such call" in page.inner_text("main")
    for query in ({"linkedid": key}, {"uniqueid": other["uniqueid"]}):
        page.goto(f"{site.base}/?{urlencode(query)}")
        assert "No call matches this search." in page.inner_text("#results")
        export = page.request.get(f"{site.base}/export.csv?{urlencode(query)}&columns=all")
        assert export.status == 200 and export.text().strip("\ufeff\r\n") == ",".join(RECORD_KEYS)
    path = quote(other["recording_file"])
    for url in (f"/recordings/{path}", f"/recording-links/{path}"):
        assert page.request.get(site.base + url).status == 401  # a session is no token
        missing = httpx.get(f"{site.base}/recordings/2099/none.wav",
                            headers={"Authorization": f"Bearer {SCOPED_TOKEN}"})  # fmt: skip
        scoped = httpx.get(site.base + url, headers={"Authorization": f"Bearer {SCOPED_TOKEN}"})
        assert scoped.status_code == 404 and scoped.content == missing.content
        assert httpx.get(site.base + url, headers={"Authorization": f"Bearer {TOKEN}"}).is_success
    own = next(r for r in reversed(mine) if r["recording_file"])  # its own call: it plays
    page.goto(f"{site.base}/calls/{own['linkedid'] or own['uniqueid']}")
    src = page.get_attribute("audio", "src")
    assert src and page.request.get(site.base + src).status == 200
    page.context.close()


# --- every page: accessible, at desktop and phone width --------------------------------


@pytest.mark.parametrize("width", ["desktop", "phone", "dark"])
def test_every_page_is_accessible_and_fits(browser: Any, site: Site, width: str) -> None:
    """Each page at desktop width, at phone width, and in the dark colour scheme."""
    viewport = PHONE if width == "phone" else DESKTOP
    options: dict[str, Any] = {"viewport": viewport}
    if width == "phone":
        options["is_mobile"] = True
    if width == "dark":
        options["color_scheme"] = "dark"
    context = browser.new_context(**options)
    page = context.new_page()

    def check(name: str, full_page: bool = True) -> None:
        page.wait_for_load_state()
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= viewport["width"], (name, wide)  # no sideways scrolling
        accessible(page)
        shoot(page, f"{name}-{width}", full_page=full_page)

    page.goto(f"{site.base}/login?next=/")
    check("signin")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not the password")
    page.press("input[name=password]", "Enter")
    page.wait_for_selector("#signin-message")
    check("signin-wrong")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{site.base}/")
    check("calllog", full_page=width != "phone")
    if width == "phone":
        page.locator("#results").scroll_into_view_if_needed()
        shoot(page, "calllog-phone-results", full_page=False)
    page.goto(f"{site.base}/?hour_from=25:00&telephone_like=072*")
    check("calllog-bad-search")
    page.goto(f"{site.base}/?preset=7d&view=legs")
    page.locator("#export-all").scroll_into_view_if_needed()
    check("calllog-exports", full_page=False)
    _, leg = target_call(site)
    page.goto(f"{site.base}/calls/{leg['linkedid'] or leg['uniqueid']}")
    check("callview")
    several = next(legs for legs in calls_of(site.records).values() if len(legs) >= 3)
    page.goto(f"{site.base}/calls/{several[0]['linkedid']}")
    check("callview-legs")
    page.goto(f"{site.base}/calls/no-such-call")
    check("notfound")
    page.goto(f"{site.base}/export.csv?columns=some")
    check("export-refused")
    context.close()
