"""What the server's tests share: the vendor's error envelope, SQLite's files, and a real
``cdrapi serve`` process for the tests that need workers or another user."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import free_port

CDRAPI = str(Path(sys.executable).parent / "cdrapi")
UNAVAILABLE = ["Service unavailable: the call store cannot be read"]


def assert_envelope(response: httpx.Response, status: int) -> list[str]:
    """``response`` is the vendor's error envelope with ``status``; its messages."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["has_error", "messages", "pagination", "results"]
    assert body["has_error"] is True
    assert body["pagination"] == [] and body["results"] == []
    assert body["messages"] and all(isinstance(m, str) and m for m in body["messages"])
    return list(body["messages"])


def sqlite_files(path: Path) -> list[Path]:
    """A SQLite database's files: the main file, its -wal and its -shm."""
    return [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm")]


@contextmanager
def served(command: list[str], token: str, port: int | None = None) -> Iterator[tuple[str, int]]:
    """``command`` (a ``cdrapi serve``) with API token ``token`` on ``port``, once it
    answers /healthz: its base URL and process id. Terminated when the block ends."""
    port = port or free_port()
    env = {**os.environ, "CDRAPI_API_TOKEN": token}
    args = [*command, "--port", str(port), "--no-access-log"]
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "cdrapi serve did not start"
                time.sleep(0.05)
        yield base, process.pid
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=20)
