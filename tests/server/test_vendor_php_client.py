"""The vendor's own PHP client (examples/vendor_client.php, run by the real php binary)
against our server over loopback: every record of the period, each exactly once."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.conftest import need
from tests.data import load, sample_rows

Serve = Callable[[Settings], AbstractContextManager[str]]
CLIENT = Path(__file__).parents[2] / "examples" / "vendor_client.php"


def run_client(base: str, token: str, key: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CDRAPI_URL": f"{base}/api/cdr",
        "CDRAPI_API_TOKEN": token,
        "CDRAPI_API_KEY": key,
    }
    return subprocess.run(
        ["php", str(CLIENT)], env=env, capture_output=True, text=True, timeout=120
    )


def test_vendor_client_gets_every_record_once(db_url: str, serve: Serve) -> None:
    need(shutil.which("php") is not None, "php-cli is not installed")
    rows = load(connect(db_url), sample_rows(700))
    expected = [
        (str(row["id"]), row["uniqueid"], row["time"])
        for row in rows
        if "2024-01-01 00:00:00" <= row["time"] <= "2024-01-15 23:59:59"
    ]
    assert len(expected) > 300  # several pages
    settings = Settings(db=db_url, api_token="your_api_token", api_key="your_api_key")
    with serve(settings) as base:
        result = run_client(base, "your_api_token", "your_api_key")
        assert result.returncode == 0, result.stderr
        received = [tuple(line.split("\t")) for line in result.stdout.splitlines()]
        assert received == expected

        wrong_key = run_client(base, "your_api_token", "not_the_key")
        assert wrong_key.returncode == 1
        assert "Invalid api_hash" in wrong_key.stderr
