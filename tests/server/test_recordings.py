"""Recordings over HTTP (cdrapi.server.recordings), the app called in process: the files
ingestion matched to calls, served with the API's token or a signed link that has not
expired, never anything outside ``recordings_dir`` nor a dotfile in it."""

from __future__ import annotations

import html
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette

from cdrapi.ingest import IngestRun, ingest_csv
from cdrapi.server.recordings import recording_routes, sign, signed_path
from cdrapi.settings import Settings, TokenScope
from cdrapi.store.accounts import create_account
from cdrapi.store.engine import connect
from cdrapi.store.executor import StoreExecutor
from tests.conftest import app_client
from tests.data import load
from tests.ingest.conftest import append, cdr_line
from tests.server.conftest import CDRAPI, assert_envelope, served

TOKEN = "recordings-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "s3cret"
AUDIO = bytes(range(256)) * 40  # 10,240 bytes
DAY = "2024/03/09/in-0312285000-0721000000-20240309-170000-1710000000.1.wav"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Calls 1 (recorded, in its day directory) and 3 (not recorded) ingested from a
    cdr_csv file; a recordings directory with dotfiles, and links in and out of it."""
    tmp = tmp_path_factory.mktemp("recordings")
    root = tmp / "monitor"
    (root / "2024" / "03" / "09").mkdir(parents=True)
    (root / DAY).write_bytes(AUDIO)
    (root / "1710000000.2.wav").write_bytes(b"top level")  # plain MixMonitor ${UNIQUEID}.wav
    (tmp / "secret.txt").write_text("outside")
    os.symlink(tmp / "secret.txt", root / "link.wav")
    (root / "2024" / "a.wav").write_bytes(AUDIO[:1024])
    (root / ".hidden.wav").write_bytes(b"dot")
    (root / ".git").mkdir()
    (root / ".git" / "config.wav").write_bytes(b"dot")
    (root / "2024" / ".secret.wav").write_bytes(b"dot")
    os.symlink(root / "2024" / ".secret.wav", root / "2024" / "b.wav")
    settings = Settings(
        db=f"sqlite:///{tmp / 'store.db'}", api_token=TOKEN, recordings_dir=str(root),
        recording_secret=SECRET, recording_link_ttl=60,
    )  # fmt: skip
    master = tmp / "Master.csv"
    append(master, cdr_line(1), cdr_line(3))
    ingest_csv(connect(settings.db), [master], IngestRun(settings))
    return settings


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[httpx.Client]:
    """A client that sends no token of its own."""
    with app_client(settings) as http:
        yield http


@pytest.fixture(scope="module")
def records(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.post("/api/cdr", headers=AUTH, json={})
    assert response.status_code == 200
    return list(response.json()["results"])


def test_a_recorded_call_has_a_recording_url(records: list[dict[str, Any]]) -> None:
    url = records[0]["recording_url"]
    assert url.startswith("/recordings/2024/03/09/in-") and url.endswith("1710000000.1.wav")
    assert records[0]["recording_file"] == DAY


def test_a_call_without_recording_has_none(records: list[dict[str, Any]]) -> None:
    assert records[1]["recording_file"] is None and records[1]["recording_url"] is None


def test_a_recording_needs_the_token(client: httpx.Client, records: list[dict[str, Any]]) -> None:
    assert client.get(records[0]["recording_url"]).status_code == 401


def test_a_recording_is_served_whole_with_its_type(
    client: httpx.Client, records: list[dict[str, Any]]
) -> None:
    full = client.get(records[0]["recording_url"], headers=AUTH)
    assert full.status_code == 200 and full.content == AUDIO
    assert full.headers["content-type"] == "audio/wav"
    assert full.headers["accept-ranges"] == "bytes"


def test_a_recording_is_served_in_ranges(
    client: httpx.Client, records: list[dict[str, Any]]
) -> None:
    url = records[0]["recording_url"]
    part = client.get(url, headers={**AUTH, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == AUDIO[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(AUDIO)}"
    tail = client.get(url, headers={**AUTH, "Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == AUDIO[-16:]
    assert client.get(url, headers={**AUTH, "Range": "bytes=999999-"}).status_code == 416


# --- signed links ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def link(client: httpx.Client, records: list[dict[str, Any]]) -> str:
    """The signed link /recording-links/ answers for call 1's recording."""
    asked = records[0]["recording_url"].replace("/recordings/", "/recording-links/")
    return str(client.get(asked, headers=AUTH).json()["url"])


def test_a_signed_link_needs_no_token(client: httpx.Client, link: str) -> None:
    assert client.get(link).content == AUDIO


def test_a_tampered_signed_link_is_403(client: httpx.Client, link: str) -> None:
    assert client.get(link.replace("signature=", "signature=0")).status_code == 403


def test_an_expired_signed_link_is_403(client: httpx.Client) -> None:
    old = signed_path(SECRET, DAY, ttl=-1, now=time.time())
    assert client.get(old).status_code == 403


def test_a_link_signed_with_the_secret_serves_its_file(client: httpx.Client) -> None:
    other = signed_path(SECRET, "1710000000.2.wav", ttl=60)
    assert client.get(other).content == b"top level"


FUTURE = int(time.time()) + 600
GOOD = sign(SECRET, "2024/a.wav", FUTURE)
PAST = int(time.time()) - 10
BAD_LINKS = {
    "non-ASCII": f"expires={FUTURE}&signature=%C3%A9",
    "non-ASCII, 64 characters": f"expires={FUTURE}&signature=" + "%C3%A9" * 64,
    "not UTF-8": f"expires={FUTURE}&signature=%FF%FE",
    "too long": f"expires={FUTURE}&signature={GOOD}{GOOD}",
    "one digit more": f"expires={FUTURE}&signature={GOOD}0",
    "one digit less": f"expires={FUTURE}&signature={GOOD[:-1]}",
    "empty": f"expires={FUTURE}&signature=",
    "not hex": f"expires={FUTURE}&signature=" + "g" * 64,
    "NUL": f"expires={FUTURE}&signature=%00{GOOD[1:]}",
    "wrong": f"expires={FUTURE}&signature=" + "0" * 64,
    "expires changed": f"expires={FUTURE + 1}&signature={GOOD}",
    "expires missing": f"signature={GOOD}",
    "expires not a number": f"expires=soon&signature={GOOD}",
    "expires in other digits": f"expires=%D9%A1%D9%A2&signature={GOOD}",
    "expires with a sign": f"expires=%2B{FUTURE}&signature={GOOD}",
    "expires huge": f"expires={'9' * 5000}&signature={GOOD}",
}


@pytest.mark.parametrize("query", BAD_LINKS.values(), ids=BAD_LINKS.keys())
def test_bad_signatures_of_every_shape_are_403(client: httpx.Client, query: str) -> None:
    response = client.get(f"/recordings/2024/a.wav?{query}")
    assert assert_envelope(response, 403) == ["Invalid recording link"]


def test_a_link_past_its_expiry_says_so(client: httpx.Client) -> None:
    query = f"expires={PAST}&signature={sign(SECRET, '2024/a.wav', PAST)}"
    response = client.get(f"/recordings/2024/a.wav?{query}")
    assert assert_envelope(response, 403) == ["Recording link expired"]


def test_a_valid_signature_serves_the_file(client: httpx.Client) -> None:
    valid = client.get(f"/recordings/2024/a.wav?expires={FUTURE}&signature={GOOD}")
    assert valid.status_code == 200 and valid.content == AUDIO[:1024]


def test_a_far_expiry_is_the_signers_choice(client: httpx.Client) -> None:
    far = 4_000_000_000
    query = f"expires={far}&signature={sign(SECRET, '2024/a.wav', far)}"
    assert client.get(f"/recordings/2024/a.wav?{query}").status_code == 200


# --- what is never served --------------------------------------------------------------

ESCAPES = ["../secret.txt", "..%2Fsecret.txt", "2024/../../secret.txt", "link.wav",
           "%2Fetc%2Fpasswd", "2024/03/09/missing.wav"]  # fmt: skip


@pytest.mark.parametrize("escape", ESCAPES)
def test_nothing_outside_the_recordings_directory(client: httpx.Client, escape: str) -> None:
    response = client.get(f"/recordings/{escape}", headers=AUTH)
    assert response.status_code == 404, escape
    assert response.json()["has_error"] is True


DOTFILES = [".hidden.wav", ".git/config.wav", "2024/.secret.wav", "2024/b.wav", "%2Ehidden.wav"]


@pytest.mark.parametrize("route", ["recordings", "recording-links"])
@pytest.mark.parametrize("path", DOTFILES)
def test_dotfiles_in_the_recordings_directory_are_not_served(
    client: httpx.Client, route: str, path: str
) -> None:
    assert assert_envelope(client.get(f"/{route}/{path}", headers=AUTH), 404) == ["Not found"]


@pytest.mark.parametrize(
    ("url", "authorization"),
    [
        pytest.param("/recordings/2024/a.wav", b"Bearer \xe9", id="token not UTF-8"),
        pytest.param("/recordings/%FF%FE.wav", f"Bearer {TOKEN}".encode(), id="path not UTF-8"),
    ],
)
def test_hostile_requests_for_recordings_are_4xx(
    client: httpx.Client, url: str, authorization: bytes
) -> None:
    response = client.get(url, headers={"Authorization": authorization})
    assert 400 <= response.status_code < 500, response.text
    assert_envelope(response, response.status_code)


# --- scoped tokens: the recordings of their calls only --------------------------------

SCOPED_2, SCOPED_EXT = "project-two-token", "agent-0721000111"
#: path -> (project, source) of the call naming it (None: a file no call names).
OWNED = {
    "2024/05/01/in-0312285000-0721000111-20240501-100000-1714546800.1.wav": (2, "0721000111"),
    "ondemand/2024/05/01/od-1714546800.1-1.wav": (2, "0721000111"),  # a monitor file
    "ondemand/2024/05/01/od-1714546800.1-2.wav": (2, "0721000111"),  # and a second one
    "2024/05/01/out-0744000222-101-20240501-100500-1714547100.2.wav": (1, "101"),
    "odd name without an id.wav": (2, "0744000333"),
    "2024/05/01/copy-of-1714546800.1.wav": (1, "0744000444"),  # names project 2's call
    "orphan.wav": None,
}


def owned_rows() -> list[dict[str, Any]]:
    rows = []
    monitors = "ondemand/2024/05/01/od-1714546800.1-1.wav,ondemand/2024/05/01/od-1714546800.1-2.wav"
    named = [path for path, owner in OWNED.items() if owner and not path.startswith("ondemand")]
    for n, path in enumerate(named, 1):
        project, source = OWNED[path] or (None, "")
        uid = f"17145468{n:02d}.{n}" if n > 1 else "1714546800.1"
        rows.append({
            "uniqueid": uid, "linkedid": uid, "time": f"2024-05-01 10:{n:02d}:00",
            "source": source, "destination": "0312285000", "direction": "IN",
            "call_status": "ANSWERED", "project_id": project, "recording_file": path,
            "monitor_files": monitors if n == 1 else None, "billsec": 30, "duration": 40,
        })  # fmt: skip
    return rows


@pytest.fixture
def scoped_site(db_url: str, tmp_path: Path) -> Settings:
    engine = connect(db_url)
    load(engine, owned_rows())
    engine.dispose()
    root = tmp_path / "recordings"
    for path in [*OWNED, "2024/05/01/nobodys.wav"]:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(path.encode() + AUDIO)
    scopes = (
        TokenScope(token=SCOPED_2, projects=(2,)),
        TokenScope(token=SCOPED_EXT, extensions=("0721000111",)),
    )
    return Settings(
        db=db_url, api_token=TOKEN, recordings_dir=str(root), recording_secret=SECRET,
        scoped_tokens=scopes,
    )  # fmt: skip


def _visible(token: str, owner: tuple[int, str] | None) -> bool:
    if token == TOKEN:
        return True
    if owner is None:
        return False
    return owner[0] == 2 if token == SCOPED_2 else owner[1] == "0721000111"


def _check_scopes(client: httpx.Client) -> None:
    missing = client.get("/recordings/2024/05/01/missing.wav", headers=AUTH)
    assert missing.status_code == 404
    for token in (TOKEN, SCOPED_2, SCOPED_EXT):
        auth = {"Authorization": f"Bearer {token}"}
        for path, owner in OWNED.items():
            got = client.get(f"/recordings/{quote(path)}", headers=auth)
            asked = client.get(f"/recording-links/{quote(path)}", headers=auth)
            if _visible(token, owner):
                assert got.status_code == 200, (token, path)
                assert got.content == path.encode() + AUDIO
                assert client.get(asked.json()["url"]).content == got.content  # no token
                part = client.get(
                    f"/recordings/{quote(path)}", headers={**auth, "Range": "bytes=0-9"}
                )
                assert part.status_code == 206 and part.content == path.encode()[:10]
            else:  # the very answer a file that does not exist gets
                for answer in (got, asked):
                    assert answer.status_code == 404, (token, path)
                    assert answer.content == missing.content
                    assert answer.headers["content-type"] == missing.headers["content-type"]
        nobody = client.get("/recordings/2024/05/01/nobodys.wav", headers=auth)
        assert nobody.status_code == (200 if token == TOKEN else 404)
    bad = client.get(
        f"/recordings/{quote(next(iter(OWNED)))}", headers={"Authorization": "Bearer x"}
    )
    assert bad.status_code == 401  # an unknown token, as ever


def test_a_scoped_token_gets_the_recordings_of_its_calls_only(scoped_site: Settings) -> None:
    with app_client(scoped_site) as client:  # the app's routes, as cdrapi serve runs them
        _check_scopes(client)


def test_a_scoped_tokens_check_on_the_apps_store_threads(scoped_site: Settings) -> None:
    engine = connect(scoped_site.db, create=False)
    database = StoreExecutor(engine)
    try:
        with app_client(Starlette(routes=recording_routes(scoped_site, database))) as client:
            _check_scopes(client)
    finally:
        database.close()
        engine.dispose()


def test_a_scoped_token_on_a_store_that_cannot_be_read_is_503(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    (root / "a.wav").write_bytes(AUDIO)
    settings = Settings(
        db=f"sqlite:///{tmp_path / 'gone.db'}", recordings_dir=str(root),
        scoped_tokens=(TokenScope(token=SCOPED_2, projects=(2,)),),
    )  # fmt: skip
    routes = recording_routes(settings)
    with app_client(Starlette(routes=routes)) as client:
        answer = client.get("/recordings/a.wav", headers={"Authorization": f"Bearer {SCOPED_2}"})
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert answer.json()["has_error"] is True


# --- cdrapi serve: the call view's player needs no configuration -----------------------


def test_cdrapi_serve_signs_recording_links_with_a_key_kept_in_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recordings_dir without recording_secret: every worker, and a restarted server,
    signs the call view's recording links with the same generated key."""
    db = f"sqlite:///{tmp_path / 'cdrapi.db'}"
    engine = connect(db)
    load(engine, owned_rows()[:1])
    create_account(engine, "admin", "a long enough password")
    engine.dispose()
    path = next(iter(OWNED))
    root = tmp_path / "recordings"
    (root / path).parent.mkdir(parents=True)
    (root / path).write_bytes(AUDIO)
    monkeypatch.setenv("CDRAPI_RECORDINGS_DIR", str(root))
    monkeypatch.delenv("CDRAPI_RECORDING_SECRET", raising=False)
    command = [CDRAPI, "serve", "--db", db, "--workers", "2"]

    def player_link(base: str) -> str:
        with httpx.Client(base_url=base) as browser:
            form = {"username": "admin", "password": "a long enough password"}
            assert browser.post("/login", data=form).status_code == 303
            page = browser.get("/calls/1714546800.1")
        found = re.search(r'<audio controls preload="metadata" src="([^"]+)"', page.text)
        assert found, page.text
        return html.unescape(found.group(1))

    with served(command, TOKEN) as (base, _):
        links = [player_link(base) for _ in range(4)]  # new connections: either worker
        for link in links:
            assert "signature=" in link
            for _ in range(4):
                answer = httpx.get(base + link, headers={"Range": "bytes=0-99"})
                assert answer.status_code == 206 and answer.content == AUDIO[:100]
    with served(command, TOKEN) as (base, _):  # started again: the same key
        assert httpx.get(base + links[0]).content == AUDIO
