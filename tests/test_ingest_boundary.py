"""Ingestion builds no SQL on the store's tables, and its sources do not import each other
(issue 10, items 1 and 4).

Every statement on ``calls``, the directory tables, ``checkpoints``, ``queue_calls``
and the search is the store's: ingestion reaches the store only through
:mod:`cdrapi.store.writer` (the ``Writer`` a run is given) and hands it plain values.
SQL on the PBX's own tables (the ``cdr`` and ``queue_log`` tables a source reads) is
ingestion's, and stays allowed: ``select``, ``table``, ``column`` and ``inspect``.

The modules are read as source (``ast``), not imported, so a rule broken in a module no
test imports is still found.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from cdrapi.store.schema import metadata

INGEST = Path(__file__).parents[1] / "src" / "cdrapi" / "ingest"

#: The one store module ingestion may import, and what of it: the writer a run is given.
STORE_ENTRY = "cdrapi.store.writer"
STORE_NAMES = {"Writer"}
#: What of SQLAlchemy builds statements that write, or SQL from text: nothing ingestion
#: needs for reading the PBX's tables.
WRITING = {"insert", "update", "delete", "text", "bindparam", "literal_column", "exists",
           "case", "true", "false", "values", "upsert"}  # fmt: skip
#: The store's tables (the search's own included).
STORE_TABLES = frozenset(metadata.tables) | {"calls_numbers"}
_ON_A_TABLE = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|FROM|JOIN|INTO)\s+[\"`]?("
    + "|".join(sorted(STORE_TABLES))
    + r")\b"
)
#: The sources: one module per kind of PBX record, each its own.
SOURCES = ("csvfile", "sqltable", "queue_log", "queue_log_table", "cel_file", "cel_table")


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _imports(tree: ast.Module) -> list[tuple[str, str]]:
    """(module, name) of each import (name ``""`` for ``import module``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def store_sql_in(root: Path) -> list[str]:
    """Each place in the ingest package at ``root`` that builds SQL on a store table
    (``file:line: what``)."""
    problems = []
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.name
        for module, name in _imports(tree):
            if module.startswith("cdrapi.store.") and module != STORE_ENTRY:
                problems.append(f"{where}: imports {module} (the store is {STORE_ENTRY})")
            if module == "cdrapi.store" and name != "writer":
                problems.append(f"{where}: imports cdrapi.store.{name}")
            if module == STORE_ENTRY and name not in STORE_NAMES:
                problems.append(f"{where}: imports {name} from {module}")
            builders = module.startswith(("sqlalchemy.dialects", "sqlalchemy.sql"))
            if module.startswith("sqlalchemy") and (name in WRITING or builders):
                problems.append(f"{where}: imports {name or module} from {module}")
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and (found := _ON_A_TABLE.search(node.value))
            ):
                problems.append(f"{where}:{node.lineno}: SQL on {found.group(1)}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name | ast.Attribute)
                and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
                in ("table", "Table")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in STORE_TABLES
            ):
                problems.append(f"{where}:{node.lineno}: a table() of {node.args[0].value}")
    return problems


def sources_importing_sources(root: Path) -> list[str]:
    """Each import of one source module by another (``importer -> imported``)."""
    problems = []
    for source in SOURCES:
        tree = ast.parse((root / f"{source}.py").read_text(encoding="utf-8"))
        for module, name in _imports(tree):
            imported = module.rsplit(".", 1)[-1] if module.startswith("cdrapi.ingest.") else ""
            if module == "cdrapi.ingest":
                imported = name
            if imported in SOURCES and imported != source:
                problems.append(f"{source} -> {imported}")
    return problems


def test_ingestion_builds_no_sql_on_the_stores_tables() -> None:
    assert store_sql_in(INGEST) == []


def test_the_check_finds_sql_built_on_a_store_table(tmp_path: Path) -> None:
    """The rule bites: each way ingestion built store SQL before issue 10 is found."""
    (tmp_path / "one.py").write_text(
        "from sqlalchemy import Engine, select, update\n"
        "from cdrapi.store.schema import calls\n"
        "from cdrapi.store.writer import Writer, writing\n"
        "def f(conn):\n"
        "    '''Rows FROM calls (a docstring may say so).'''\n"
        "    conn.exec_driver_sql('UPDATE calls SET is_recovered = 1 WHERE id = ?', [(1,)])\n"
    )
    (tmp_path / "two.py").write_text(
        "from sqlalchemy import column, select, table\n"
        "from sqlalchemy.dialects import sqlite\n"
        "from cdrapi.store import schema\n"
        "CHECKPOINTS = table('checkpoints', column('source'))\n"
        "READ = select(column('x')).select_from(table('cdr'))  # the PBX's table: fine\n"
    )
    assert store_sql_in(tmp_path) == [
        "one.py: imports update from sqlalchemy",
        "one.py: imports cdrapi.store.schema (the store is cdrapi.store.writer)",
        "one.py: imports writing from cdrapi.store.writer",
        "one.py:6: SQL on calls",
        "two.py: imports sqlite from sqlalchemy.dialects",
        "two.py: imports cdrapi.store.schema",
        "two.py:4: a table() of checkpoints",
    ]


def test_sources_do_not_import_each_other() -> None:
    """What two sources share (the queue fields, the queue_log events) is a module of
    its own that each depends on as a sibling."""
    assert sources_importing_sources(INGEST) == []
