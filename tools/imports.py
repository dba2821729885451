"""The import graph of cdrapi's layers, read from the code, and the rule it must keep.

    python tools/imports.py            # each layer and the layers it imports
    python tools/imports.py --modules  # the same, module by module
    python tools/imports.py --check    # exit 1 when a layer imports one it may not

A layer is a package under ``src/cdrapi`` (``protocol``, ``store``...) or a top-level
module (``settings``, ``demo``). Imports inside functions count too (the CLI imports its
commands lazily). ARCHITECTURE.md shows this output; tests/test_layers.py runs the check.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cdrapi"

#: What each layer may import (besides itself). The package's ``__init__`` re-exports the
#: public API of every layer but the CLI; ``producer`` (a forked producer process, for
#: ingestion's big files and big demo runs) imports no other layer.
ALLOWED: dict[str, set[str]] = {
    "protocol": set(),
    "settings": set(),
    "producer": set(),
    "store": {"protocol"},
    "server": {"protocol", "store", "settings", "web"},
    "web": {"protocol", "store", "settings"},
    "ingest": {"store", "settings", "producer"},
    "client": {"protocol"},
    "demo": {"store", "producer", "ingest"},
    "cli": {
        "protocol",
        "store",
        "server",
        "web",
        "ingest",
        "client",
        "demo",
        "settings",
        "producer",
    },
    "__init__": {"protocol", "client"},
}


def layer_of(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def module_of(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(("cdrapi", *parts)).removesuffix(".__init__")


def imports(path: Path) -> Iterator[str]:
    """The cdrapi modules ``path`` imports (anywhere in it)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("cdrapi"):
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("cdrapi"))


def edges(by_module: bool = False) -> dict[str, set[str]]:
    """Layer (or module) -> the layers (or modules) it imports, itself left out."""
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        source = module_of(path) if by_module else layer_of(path)
        found = graph.setdefault(source, set())
        for target in imports(path):
            parts = target.split(".")
            name = target if by_module else (parts[1] if len(parts) > 1 else "__init__")
            if name != source:
                found.add(name)
    return graph


def violations() -> list[str]:
    """``layer -> layer`` imports that :data:`ALLOWED` does not allow."""
    return [
        f"{source} -> {target}"
        for source, targets in sorted(edges().items())
        for target in sorted(targets)
        if target not in ALLOWED.get(source, set())
    ]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        bad = violations()
        for line in bad:
            print(f"not allowed: {line}")
        return 1 if bad else 0
    for source, targets in sorted(edges(by_module="--modules" in argv).items()):
        print(f"{source} -> {', '.join(sorted(targets)) or '(nothing)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
