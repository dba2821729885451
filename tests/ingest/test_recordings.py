"""Recordings: matched to calls at ingestion, served with a token or a signed link, with
HTTP Range, never outside ``recordings_dir``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from cdrapi.ingest import Options, ingest_csv
from cdrapi.ingest.recordings import RecordingIndex
from cdrapi.server.recordings import signed_path
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.conftest import running
from tests.ingest.conftest import TOKEN, api, append, cdr_line

AUDIO = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def monitor(tmp_path: Path) -> Path:
    root = tmp_path / "monitor"
    day = root / "2024" / "03" / "09"
    day.mkdir(parents=True)
    (day / "in-0312285000-0721000000-20240309-170000-1710000000.1.wav").write_bytes(AUDIO)
    (root / "1710000000.2.wav").write_bytes(b"top level")  # plain MixMonitor ${UNIQUEID}.wav
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", root / "link.wav")
    return root


def test_recordings_are_matched_by_uniqueid_in_the_day_directory(monitor: Path) -> None:
    index = RecordingIndex(monitor)
    found = index.find("1710000000.1", "", "2024-03-09 17:00:00")
    assert found == "2024/03/09/in-0312285000-0721000000-20240309-170000-1710000000.1.wav"
    assert index.find("1710000000.2", "", "2024-03-09 17:01:00") == "1710000000.2.wav"
    assert index.find("1710000000.3", "", "2024-03-09 17:02:00") is None
    assert index.find("1710000000.10", "", "2024-03-09 17:00:00") is None  # not a prefix match
    # FreePBX's recordingfile holds the bare name; a file written later is found too
    (monitor / "2024" / "03" / "09" / "out-1.wav").write_bytes(b"x")
    assert index.find("9.9", "out-1.wav", "2024-03-09 18:00:00") == "2024/03/09/out-1.wav"


def test_served_with_token_signed_link_and_range(monitor: Path, tmp_path: Path) -> None:
    settings = Settings(
        db=f"sqlite:///{tmp_path / 'store.db'}", api_token=TOKEN, recordings_dir=str(monitor),
        recording_secret="s3cret", recording_link_ttl=60,
    )  # fmt: skip
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), cdr_line(3))
    ingest_csv(connect(settings.db), [master], Options(settings))
    with running(settings) as base:
        first, second = api(base)
        assert second["recording_file"] is None and second["recording_url"] is None
        url = first["recording_url"]
        assert url.startswith("/recordings/2024/03/09/in-") and url.endswith("1710000000.1.wav")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(base + url).status_code == 401
        full = httpx.get(base + url, headers=auth)
        assert full.status_code == 200 and full.content == AUDIO
        assert full.headers["content-type"] == "audio/wav"
        assert full.headers["accept-ranges"] == "bytes"
        part = httpx.get(base + url, headers={**auth, "Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == AUDIO[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(AUDIO)}"
        tail = httpx.get(base + url, headers={**auth, "Range": "bytes=-16"})
        assert tail.status_code == 206 and tail.content == AUDIO[-16:]
        beyond = httpx.get(base + url, headers={**auth, "Range": "bytes=999999-"})
        assert beyond.status_code == 416
        # a signed link for a browser: no header needed, until it expires
        link = httpx.get(base + url.replace("/recordings/", "/recording-links/"), headers=auth)
        signed = link.json()["url"]
        assert httpx.get(base + signed).content == AUDIO
        assert httpx.get(base + signed.replace("signature=", "signature=0")).status_code == 403
        path = first["recording_file"]
        old = signed_path("s3cret", path, ttl=-1, now=time.time())
        assert httpx.get(base + old).status_code == 403
        other = signed_path("s3cret", "1710000000.2.wav", ttl=60)
        assert httpx.get(base + other).content == b"top level"
        # nothing outside recordings_dir, however asked
        for escape in ("../secret.txt", "..%2Fsecret.txt", "2024/../../secret.txt",
                       "link.wav", "%2Fetc%2Fpasswd", "2024/03/09/missing.wav"):  # fmt: skip
            response = httpx.get(f"{base}/recordings/{escape}", headers=auth)
            assert response.status_code == 404, escape
            assert response.json()["has_error"] is True
