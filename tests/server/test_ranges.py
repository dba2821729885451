"""HTTP byte ranges of a recording (cdrapi.server.ranges, RFC 9110 §14), the app called
in process: an invalid ``Range`` is ignored (the whole file), one that selects nothing of
the file is 416 in the vendor's envelope, the others are 206 with exactly those bytes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cdrapi.settings import Settings
from tests.conftest import app_client
from tests.server.conftest import assert_envelope

AUTH = {"Authorization": "Bearer t"}
AUDIO = bytes(range(256)) * 4  # 1,024 bytes
URL = "/recordings/2024/a.wav"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("ranges")
    (root / "monitor" / "2024").mkdir(parents=True)
    (root / "monitor" / "2024" / "a.wav").write_bytes(AUDIO)
    settings = Settings(
        db=f"sqlite:///{root / 'cdrapi.db'}", api_token="t", recordings_dir=str(root / "monitor")
    )
    with app_client(settings, headers=AUTH) as http:
        yield http


def ranged(client: httpx.Client, value: str, **headers: str) -> httpx.Response:
    return client.get(URL, headers={"Range": value.encode("latin-1"), **headers})


def test_without_a_range_the_whole_file_says_ranges_are_accepted(client: httpx.Client) -> None:
    full = client.get(URL)
    assert full.status_code == 200 and full.content == AUDIO
    assert full.headers["accept-ranges"] == "bytes"


MANY = "bytes=" + ",".join(["0-0"] * 101)  # more ranges than MAX_RANGES
IGNORED = ["bytes=5-2", "bytes=abc", "bytes=", "bytes=-", "items=0-1", "bytes 0-1",
           "bytes=1-2-3", "bytes=--1", MANY, "bytes=\u00b2-3"]  # fmt: skip


@pytest.mark.parametrize("value", IGNORED, ids=[value[:20] for value in IGNORED])
def test_an_invalid_range_is_ignored(client: httpx.Client, value: str) -> None:
    response = ranged(client, value)
    assert response.status_code == 200 and response.content == AUDIO, value


@pytest.mark.parametrize(
    "value", ["bytes=999999-", "bytes=-0", "bytes=1024-2000", "bytes=5000-,6000-"]
)
def test_a_range_outside_the_file_is_a_416_envelope(client: httpx.Client, value: str) -> None:
    response = ranged(client, value)
    assert assert_envelope(response, 416), value
    assert response.headers["content-range"] == f"bytes */{len(AUDIO)}"


@pytest.mark.parametrize(
    ("value", "part"),
    [
        ("bytes=0-1", AUDIO[:2]),
        ("bytes=1000-", AUDIO[1000:]),
        ("bytes=-2000", AUDIO),
        ("bytes=-16", AUDIO[-16:]),
        ("bytes=10-19, 2000-3000", AUDIO[10:20]),
    ],
)
def test_a_range_is_206_with_its_bytes(client: httpx.Client, value: str, part: bytes) -> None:
    response = ranged(client, value)
    assert response.status_code == 206 and response.content == part


def test_a_range_says_which_bytes_of_how_many(client: httpx.Client) -> None:
    part = ranged(client, "bytes=100-199")
    assert part.status_code == 206 and part.content == AUDIO[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(AUDIO)}"


def test_two_ranges_are_multipart_byteranges(client: httpx.Client) -> None:
    two = ranged(client, "bytes=0-1,4-5")
    assert two.status_code == 206 and two.headers["content-type"].startswith("multipart/byteranges")


def test_a_failed_if_range_gets_the_whole_file(client: httpx.Client) -> None:
    stale = ranged(client, "bytes=999999-", **{"If-Range": '"not-this-etag"'})
    assert stale.status_code == 200 and stale.content == AUDIO
