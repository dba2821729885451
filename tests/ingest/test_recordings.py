"""Recordings matched to calls at ingestion (cdrapi.ingest.recordings): by uniqueid in the
call's day directory or at the top, or by the name the PBX stored. How they are served
is tested in tests/server/test_recordings.py."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdrapi.ingest.recordings import RecordingIndex, recording_url

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


@given(st.text() | st.from_regex(r"[A-Za-z0-9_.~/ %-]{0,40}", fullmatch=True))
def test_a_recording_url_quotes_its_path_as_quote_does(relpath: str) -> None:
    """URL-safe paths skip quote() (most do): the URL is the same either way."""
    assert recording_url("http://pbx:8080/", relpath) == (
        "http://pbx:8080/recordings/" + quote(relpath)
    )
