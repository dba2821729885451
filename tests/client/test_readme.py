"""The README's "Pull calls from any /api/cdr server" section works as written: its Python
example runs against a live server, and its ``cdrapi pull`` commands, with the server's
address and token put in, succeed."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from cdrapi.cli.pull import pull
from tests.client.conftest import KEY, TOKEN, Server

README = Path(__file__).parents[2] / "README.md"
TITLE = "## Pull calls from any /api/cdr server"


def section(text: str) -> str:
    start = text.find(TITLE)
    assert start >= 0, f"README.md has no '{TITLE}' section"
    end = text.find("\n## ", start + len(TITLE))
    return text[start : end if end >= 0 else len(text)]


def check_python_examples(text: str, server: Server, folder: Path) -> None:
    blocks = re.findall(r"```py\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert (folder / "inbound.state.json").exists()


def check_cli_examples(text: str, server: Server, folder: Path) -> None:
    (block,) = re.findall(r"```sh\n(.*?)```", text, re.S)
    commands = [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    commands = [line for line in commands if not line.lstrip().startswith("#")]
    assert commands
    for command in commands:
        for placeholder in ("http://127.0.0.1:8080", "https://pbx.example.com"):
            command = command.replace(placeholder, server.url)
        command = command.replace('"$(cat .cdrapi-token)"', TOKEN).replace('"$TOKEN"', TOKEN)
        command = command.replace('"$KEY"', KEY)
        command = command.replace("postgresql://etl@db/warehouse", f"sqlite:///{folder}/w.db")
        args = shlex.split(command)
        assert args[:2] == ["cdrapi", "pull"], command
        result = CliRunner().invoke(pull, args[2:], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        assert "Pulled " in result.stderr


def test_the_readme_pull_section_runs(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = section(README.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDRAPI_URL", server.url)
    monkeypatch.setenv("CDRAPI_API_TOKEN", TOKEN)
    monkeypatch.setenv("CDRAPI_API_KEY", KEY)
    check_python_examples(text, server, tmp_path)
    check_cli_examples(text, server, tmp_path)
    assert os.path.exists(tmp_path / "january.parquet")
