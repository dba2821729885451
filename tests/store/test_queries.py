"""Filters to SQL: each declared kind's SQL, the indexes it uses, the wildcard rule, the
trigram prefilter never changing a result, and a scope's SQL from its one declaration."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from cdrapi.protocol.filters import CallFilters, narrow, parse_filters
from cdrapi.store.engine import connect
from cdrapi.store.pages import CallPages
from cdrapi.store.queries import like_pattern, where_clauses
from cdrapi.store.schema import calls
from tests.data import load, oracle, sample_rows
from tests.protocol.test_filter_declarations import ScopedFilters

FTS = "calls.id IN (SELECT rowid FROM calls_numbers WHERE calls_numbers MATCH ?)"
BOTH_LIKE = "calls.source LIKE ? ESCAPE '\\' OR calls.destination LIKE ? ESCAPE '\\'"
BOTH_ILIKE = BOTH_LIKE.replace("LIKE", "ILIKE")
CLOCK = "substr(calls.time, ?, ?)"


def written(filters: CallFilters, dialect: str) -> tuple[str, list[Any]]:
    """The WHERE of ``filters`` as ``dialect`` writes it (placeholders as ``?``), and its
    bound values in order."""
    compiler = sqlite.dialect() if dialect == "sqlite" else postgresql.dialect()
    query = select(calls.c.id).where(*where_clauses(filters, dialect))
    compiled = query.compile(dialect=compiler, compile_kwargs={"render_postcompile": True})
    sql = " ".join(str(compiled).split("WHERE ", 1)[1].split())
    names = compiled.positiontup or re.findall(r"%\((\w+)\)s", sql)
    return re.sub(r"%\(\w+\)s(::\w+)?", "?", sql), [compiled.params[name] for name in names]


#: Each filter's SQL, as it was written by the if-chain the declarations replaced (so the
#: query plans stay the same): filters, SQLite's WHERE and values, PostgreSQL's if other.
SQL: list[tuple[dict[str, Any], str, list[Any], tuple[str, list[Any]] | None]] = [
    ({"date_between": ("2024-01-01 00:00:00", "2024-01-15 23:59:59")},
     "calls.time >= ? AND calls.time <= ?", ["2024-01-01 00:00:00", "2024-01-15 23:59:59"], None),
    ({"date_between": (None, "2024-01-15 23:59:59")},
     "calls.time <= ?", ["2024-01-15 23:59:59"], None),
    ({"hour_between": ("08:00:00", "17:59:59")},
     f"{CLOCK} >= ? AND {CLOCK} <= ?", [12, 8, "08:00:00", 12, 8, "17:59:59"], None),
    ({"hour_between": ("22:00:00", "06:00:59")},
     f"{CLOCK} >= ? OR {CLOCK} <= ?", [12, 8, "22:00:00", 12, 8, "06:00:59"], None),
    ({"hour_between": ("06:00:00", None)}, f"{CLOCK} >= ?", [12, 8, "06:00:00"], None),
    ({"project_id": (1,)}, "calls.project_id = ?", [1], None),
    ({"user_id": (10, 11)}, "calls.user_id IN (?, ?)", [10, 11], None),
    ({"inbound_route_id": (5,)}, "calls.inbound_route_id = ?", [5], None),
    ({"direction": ("IN", "OUT")}, "calls.direction IN (?, ?)", ["IN", "OUT"], None),
    ({"call_status": ("NO ANSWER",)}, "calls.call_status = ?", ["NO ANSWER"], None),
    ({"telephone_like": "0721"}, f"{FTS} AND ({BOTH_LIKE})",
     ['{source destination} : ("0721")', "%0721%", "%0721%"], (BOTH_ILIKE, ["%0721%", "%0721%"])),
    ({"telephone_like": "07"}, BOTH_LIKE, ["%07%", "%07%"], (BOTH_ILIKE, ["%07%", "%07%"])),
    ({"telephone": "0721123456"}, "calls.source = ? OR calls.destination = ?",
     ["0721123456", "0721123456"], None),
    ({"source": "*0721"}, f"{FTS} AND calls.source LIKE ? ESCAPE '\\'",
     ['{source} : ("0721")', "%0721"], ("calls.source ILIKE ? ESCAPE '\\'", ["%0721"])),
    ({"destination": "03*12"}, "calls.destination LIKE ? ESCAPE '\\'", ["03%12"],
     ("calls.destination ILIKE ? ESCAPE '\\'", ["03%12"])),
    ({"from_id": 0}, "calls.id >= ?", [0], None),
    ({"uniqueid": ("1.1",)}, "calls.uniqueid = ?", ["1.1"], None),
    ({"linkedid": ("1.1", "1.2")}, "calls.linkedid IN (?, ?)", ["1.1", "1.2"], None),
    ({"external_id": ("crm-1",)}, "calls.external_id = ?", ["crm-1"], None),
    ({"has_transcription": True}, "coalesce(calls.transcription_id, ?) != ?", ["", ""], None),
    ({"has_monitor_file": False}, "coalesce(calls.monitor_files, ?) = ?", ["", ""], None),
    ({"has_recording_file": True}, "coalesce(calls.recording_file, ?) != ?", ["", ""], None),
    (
        {"has_monitor_file": True, "from_id": 7, "telephone_like": "0721", "linkedid": ("1", "2"),
         "direction": ("IN",), "date_between": ("2024-01-01 00:00:00", None)},
        "calls.time >= ? AND calls.direction = ? AND calls.linkedid IN (?, ?) AND "
        f"{FTS} AND ({BOTH_LIKE}) AND calls.id >= ? AND coalesce(calls.monitor_files, ?) != ?",
        ["2024-01-01 00:00:00", "IN", "1", "2", '{source destination} : ("0721")', "%0721%",
         "%0721%", 7, "", ""],
        ("calls.time >= ? AND calls.direction = ? AND calls.linkedid IN (?, ?) AND "
         f"({BOTH_ILIKE}) AND calls.id >= ? AND coalesce(calls.monitor_files, ?) != ?",
         ["2024-01-01 00:00:00", "IN", "1", "2", "%0721%", "%0721%", 7, "", ""]),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("given", "sql", "values", "on_postgresql"), SQL)
def test_each_filter_writes_the_sql_it_always_wrote(
    given: dict[str, Any], sql: str, values: list[Any], on_postgresql: tuple[str, list[Any]] | None
) -> None:
    filters = CallFilters(**given)
    assert written(filters, "sqlite") == (sql, values)
    assert written(filters, "postgresql") == (on_postgresql or (sql, values))


def test_every_filter_is_written_by_the_sql_table() -> None:
    assert {name for given, *_ in SQL for name in given} == set(CallFilters.__dataclass_fields__)
    assert where_clauses(CallFilters(), "sqlite") == []


#: The index SQLite searches for each filter on its own (EXPLAIN QUERY PLAN).
PLANS = {
    "date_between": (("2024-01-02 00:00:00", "2024-01-03 23:59:59"), "INDEX ix_calls_time (time>"),
    "telephone_like": ("0721", "calls_numbers VIRTUAL TABLE INDEX"),
    "source": ("0721*", "calls_numbers VIRTUAL TABLE INDEX"),
    "telephone": ("100", "INDEX ix_calls_destination (destination=?)"),
    "from_id": (300, "INTEGER PRIMARY KEY (rowid>?)"),
    "uniqueid": (("1704067200.5",), "INDEX ix_calls_uniqueid (uniqueid=?)"),
    "linkedid": (("a", "b"), "INDEX ix_calls_linkedid (linkedid=?)"),
    "external_id": (("crm-1",), "INDEX ix_calls_external_id (external_id=?)"),
    "project_id": ((1,), "INDEX ix_calls_project_id (project_id=?)"),
    "direction": (("IN",), "INDEX ix_calls_direction (direction=?)"),
}


def test_filters_search_their_indexes_on_sqlite(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    load(engine, sample_rows(400, seed=3))
    with engine.connect() as conn:
        for name, (value, index) in PLANS.items():
            count = select(func.count()).select_from(calls)
            query = count.where(*where_clauses(CallFilters(**{name: value}), "sqlite"))
            sql = query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
            steps = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
            assert index in " | ".join(str(step[-1]) for step in steps), name


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("0721", "%0721%"),
        ("0721*", "0721%"),
        ("*0721", "%0721"),
        ("07*21", "07%21"),
        ("07%21", "07%21"),
        ("07_21", "%07\\_21%"),
        ("a\\b", "%a\\\\b%"),
        ("*", "%"),
    ],
)
def test_like_pattern(value: str, pattern: str) -> None:
    assert like_pattern(value)[0] == pattern


def test_trigram_prefilter_agrees_with_a_plain_scan(db_url: str) -> None:
    """For many searches, the indexed query returns exactly what LIKE alone returns."""
    engine = connect(db_url)
    load(engine, sample_rows(400, seed=3))
    rng = random.Random(1)
    alphabet = "0721345_%*'\"xAN"
    with engine.connect() as conn:
        for _ in range(200):
            value = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
            for name in ("telephone_like", "source", "destination"):
                where = where_clauses(CallFilters(**{name: value}), engine.dialect.name)
                indexed = conn.execute(select(calls.c.id).where(*where).order_by("id")).all()
                pattern, _ = like_pattern(value)
                columns = (
                    [calls.c.source, calls.c.destination]
                    if name == "telephone_like"
                    else [calls.c[name]]
                )
                plain = [
                    func.lower(column).like(func.lower(pattern), escape="\\") for column in columns
                ]
                scanned = conn.execute(select(calls.c.id).where(or_(*plain)).order_by("id")).all()
                assert indexed == scanned, (name, value)


def test_a_scope_gets_its_sql_from_its_one_declaration(db_url: str) -> None:
    """``ScopedFilters`` adds a token's scope on ``project_id`` and nothing else: requests
    are validated, the scope narrows counts and pages, and it meets the client's filters."""
    engine = connect(db_url)
    rows = load(engine, sample_rows(300, seed=11))
    pages = CallPages(engine)

    def ids(filters: CallFilters) -> list[int]:
        return [row[0] for row in pages.fetch(filters, 1).rows]

    def expected(**wanted: Any) -> list[int]:
        return [row["id"] for row in rows if oracle(row, wanted)][:100]

    everything = parse_filters({"direction": "in"}, ScopedFilters)
    scoped = narrow(everything, project_scope=[2])
    assert 0 < len(expected(direction="IN", project_id=2)) < len(expected(direction="IN"))
    assert ids(everything) == expected(direction="IN")
    assert ids(scoped) == expected(direction="IN", project_id=2)
    assert pages.fetch(scoped, 1).row_count == sum(
        oracle(row, {"direction": "IN", "project_id": 2}) for row in rows
    )
    assert ids(narrow(ScopedFilters(project_id=(1, 2)), project_scope=[2, 3])) == expected(
        project_id=2
    )
    assert ids(narrow(ScopedFilters(project_id=(1,)), project_scope=[2])) == []
    assert written(scoped, engine.dialect.name)[1] == ["IN", 2]
