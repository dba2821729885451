"""The call log in a real browser: Debian's chromium driven by Playwright against the app
under uvicorn on loopback. Sign in, search a number (htmx updates the results; the count
is the API's row_count), reach the results with the keyboard and open a call, play its
recording (the server answers the audio element's Range requests with 206, and seeking
moves ``currentTime``). Screenshots of both pages at desktop and phone width (390 px) go
to ``tests/artifacts/`` and ``/tmp/cdrapi-screens/``, for a person to look at.

One browser for the module; under CI=true a missing chromium fails instead of skipping.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from cdrapi.settings import Settings
from cdrapi.store.accounts import create_account
from cdrapi.store.directory import replace_directory
from cdrapi.store.engine import connect
from tests.conftest import need
from tests.data import load

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a long enough password"
SCREENS = [Path(__file__).parents[1] / "artifacts", Path("/tmp/cdrapi-screens")]
RECORDING = "2024/03/05/in-0721555123-20240305-101500.wav"


def tone(path: Path, seconds: float = 4.0, rate: int = 8000) -> None:
    """A phone-quality recording: 8 kHz 16-bit mono, a 440 Hz tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


def calls() -> list[dict[str, Any]]:
    rows = []
    for n in range(80):
        number = "0721555123" if n % 20 == 7 else f"0740{n:06d}"
        rows.append({
            "uniqueid": f"1709633700.{n}", "linkedid": f"1709633700.{n}",
            "time": f"2024-03-05 {8 + n // 10:02d}:{n % 60:02d}:00", "time_end": None,
            "caller_id": f'"Client {n}" <{number}>', "source": number,
            "destination": "0312285000", "direction": "IN",
            "call_status": "ANSWERED" if n % 3 else "NO ANSWER", "billsec": 60 if n % 3 else 0,
            "duration": 75, "hold_time": 10, "ring_time": 5, "qname": "support",
            "user_fullname": "Ana Pop" if n % 3 else None, "project_id": 1,
            "recording_file": RECORDING if n == 67 else None,
            "transcription_id": "t-67" if n == 67 else None,
            "transcription_text": "Bună ziua, am o întrebare despre factură." if n == 67 else None,
        })  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(shutil.which("chromium") is not None or os.path.exists(CHROMIUM),
         "Debian's chromium is not installed (apt-get install chromium)")  # fmt: skip
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def site(tmp_path: Path, serve: Callable[[Settings], Any]) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cdrapi.db'}"
    engine = connect(url)
    load(engine, calls())
    replace_directory(engine, projects=[{"id": 1, "name": "Support"}])
    create_account(engine, "admin", PASSWORD)
    engine.dispose()
    recordings = tmp_path / "recordings"
    tone(recordings / RECORDING)
    settings = Settings(
        db=url, api_token="token", timezone="Europe/Bucharest",
        recordings_dir=str(recordings), recording_secret="s3cret-for-links",
    )  # fmt: skip
    with serve(settings) as base:
        yield base


def shoot(page: Any, name: str, full_page: bool = True) -> None:
    for directory in SCREENS:
        directory.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(directory / f"{name}.png"), full_page=full_page)


def test_sign_in_search_open_a_call_and_play_it(browser: Any, site: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    ranged: list[int] = []
    page.on(
        "response",
        lambda r: ranged.append(r.status) if "/recordings/" in r.url else None,
    )
    page.goto(f"{site}/")
    assert "/login" in page.url
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{site}/")
    assert page.locator("#call-count").inner_text() == "80"
    shoot(page, "calllog-desktop")

    page.fill("input[name=telephone_like]", "555123")  # htmx: the results alone
    page.wait_for_function("document.querySelector('#call-count').textContent === '4'")
    api = httpx.post(f"{site}/api/cdr", json={"filters": {"telephone_like": "555123"}},
                     headers={"Authorization": "Bearer token"}).json()  # fmt: skip
    assert api["pagination"]["row_count"] == 4
    page.wait_for_function("location.search.includes('telephone_like=555123')")  # bookmarkable
    assert page.input_value("input[name=telephone_like]") == "555123"

    page.focus("form#search a[href='/']")  # the form's last control: "Clear"
    page.keyboard.press("Tab")  # the next stop is the first result
    focused = page.evaluate("document.activeElement.closest('#results') !== null")
    assert focused and page.evaluate("document.activeElement.tagName") == "A"
    assert page.evaluate("document.activeElement.textContent") == "2024-03-05 14:07:00"
    page.keyboard.press("Enter")
    page.wait_for_url("**/calls/1709633700.67")
    assert "Bună ziua" in page.inner_text("blockquote.transcription")
    assert "Answered by Ana Pop" in page.inner_text("ol.timeline")

    audio = page.locator("audio")
    page.wait_for_function("document.querySelector('audio').readyState >= 1", timeout=10_000)
    assert abs(audio.evaluate("a => a.duration") - 4.0) < 0.1
    audio.evaluate("a => { a.currentTime = 3.0; }")  # seeking
    page.wait_for_function("document.querySelector('audio').currentTime >= 2.9")
    assert 206 in ranged, ranged
    shoot(page, "callview-desktop")
    context.close()


def test_phone_width(browser: Any, site: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{site}/login?next=/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{site}/")
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 390, wide  # nothing wider than the phone: no sideways scrolling
    shoot(page, "calllog-phone", full_page=False)
    page.locator("#results").scroll_into_view_if_needed()
    shoot(page, "calllog-phone-results", full_page=False)
    page.goto(f"{site}/calls/1709633700.67")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(page, "callview-phone")
    context.close()
