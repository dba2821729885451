"""The ``cdrapi`` command as a user runs it: demo, then serve, then the vendor's PHP client
against it (what ``make run`` does); and clean one-line errors."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port, need

CDRAPI = str(Path(sys.executable).parent / "cdrapi")
PHP_CLIENT = Path(__file__).parents[1] / "examples" / "vendor_client.php"


def cdrapi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CDRAPI_")}
    return subprocess.run(
        [CDRAPI, *args], capture_output=True, text=True, timeout=300, env={**clean, **(env or {})}
    )


def test_demo_serve_and_the_vendor_client(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    made = cdrapi(
        "demo",
        "--db",
        f"sqlite:///{db}",
        "--calls",
        "3000",
        "--days",
        "20",
        "--end",
        "2024-01-20",
        "--seed",
        "3",
    )
    assert made.returncode == 0, made.stderr
    assert "Wrote 3,000 calls" in made.stdout
    with sqlite3.connect(db) as conn:
        (in_period,) = conn.execute(
            "SELECT count(*) FROM calls WHERE time BETWEEN '2024-01-01 00:00:00' "
            "AND '2024-01-15 23:59:59'"
        ).fetchone()
    assert in_period > 1000

    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CDRAPI_")}
    server = subprocess.Popen(
        [CDRAPI, "serve", "--db", f"sqlite:///{db}", "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline() + server.stdout.readline()
        token = re.search(r"API token: (\S+) \(generated", banner)
        assert token, banner
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        body = httpx.post(f"{base}/api/cdr", headers=headers, json={}).json()
        assert body["pagination"]["row_count"] == 3000

        need(shutil.which("php") is not None, "php-cli is not installed")
        env = {**os.environ, "CDRAPI_URL": f"{base}/api/cdr", "CDRAPI_API_TOKEN": token.group(1)}
        client = subprocess.run(
            ["php", str(PHP_CLIENT)], env=env, capture_output=True, text=True, timeout=120
        )
        assert client.returncode == 0, client.stderr
        ids = [line.split("\t")[0] for line in client.stdout.splitlines()]
        assert len(ids) == len(set(ids)) == in_period
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_demo_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    dumps = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.db"
        result = cdrapi(
            "demo",
            "--db",
            f"sqlite:///{db}",
            "--calls",
            "500",
            "--seed",
            "9",
            "--end",
            "2025-06-30",
        )
        assert result.returncode == 0, result.stderr
        with sqlite3.connect(db) as conn:
            dumps.append(conn.execute("SELECT * FROM calls ORDER BY id").fetchall())
    assert dumps[0] == dumps[1]
    assert len(dumps[0]) == 500


def test_errors_are_one_clean_line(tmp_path: Path) -> None:
    result = cdrapi("serve", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: config file not found: {tmp_path / 'missing.toml'}"
    bad_zone = cdrapi("demo", "--calls", "1", env={"CDRAPI_TIMEZONE": "Nowhere/Land"})
    assert bad_zone.returncode == 1
    assert "unknown time zone 'Nowhere/Land'" in bad_zone.stderr
    assert "Traceback" not in bad_zone.stderr
    bad_db = cdrapi("demo", "--db", "mysql://x/y", "--calls", "1")
    assert bad_db.returncode == 1
    assert "Traceback" not in bad_db.stderr


def test_help_lists_every_command() -> None:
    shown = cdrapi("--help")
    assert shown.returncode == 0
    listed = re.findall(r"^  (\w+)  ", shown.stdout, flags=re.MULTILINE)
    assert listed == ["demo", "ingest", "pull", "serve", "user"]


def test_pull_does_not_load_the_server_or_the_store() -> None:
    # A client-only machine runs `cdrapi pull`: it should not pay (start-up time, memory)
    # for the server, the store or the ingestion code.
    code = (
        "import sys; from cdrapi.cli import main\n"
        "try:\n    main(['pull', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sqlalchemy', 'starlette', 'pydantic', 'cdrapi.ingest', "
        "'cdrapi.server', 'cdrapi.store') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
