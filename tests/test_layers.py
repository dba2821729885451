"""The layers import only what ARCHITECTURE.md says they may, and the page shows the
import graph the code has today (``python tools/imports.py``)."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_no_layer_imports_one_it_may_not() -> None:
    tool = runpy.run_path(str(ROOT / "tools" / "imports.py"))
    assert tool["violations"]() == []


def test_the_page_shows_todays_import_graph() -> None:
    drawn = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "imports.py")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"```\n{drawn}```" in (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")


def test_the_protocol_loads_no_web_framework_and_no_database() -> None:
    # A fresh interpreter: this one has loaded everything the other tests needed.
    script = (
        "import importlib, pkgutil, sys\n"
        "import cdrapi.protocol as protocol\n"
        "for module in pkgutil.iter_modules(protocol.__path__, 'cdrapi.protocol.'):\n"
        "    importlib.import_module(module.name)\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "cdrapi" in loaded
    assert {"starlette", "sqlalchemy"}.isdisjoint(loaded)
