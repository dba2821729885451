"""The package's public names: sorted, importable, and the README's Python example runs."""

from __future__ import annotations

import re
from pathlib import Path

import cdrapi


def test_all_is_sorted_and_importable() -> None:
    assert cdrapi.__all__ == sorted(cdrapi.__all__)
    for name in cdrapi.__all__:
        assert getattr(cdrapi, name) is not None


def test_readme_python_example_runs() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
