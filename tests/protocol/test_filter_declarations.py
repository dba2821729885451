"""Each filter is one declaration: the README's table, validation and a scope come from it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from cdrapi.protocol.errors import InvalidRequest
from cdrapi.protocol.filters import (
    FILTER_NAMES,
    CallFilters,
    Clause,
    declare,
    filters_of,
    narrow,
    parse_filters,
)
from cdrapi.protocol.values import IDS

README = Path(__file__).parents[2] / "README.md"


@dataclass(frozen=True, slots=True)
class ScopedFilters(CallFilters):
    """The filters plus a token's scope (issue 11): one more declaration, nothing else."""

    project_scope: tuple[int, ...] = declare(IDS, "any_of", "project_id", requested=False)


def readme_filter_table() -> list[list[str]]:
    """The rows of the table under ``## Filters``, as lists of cells."""
    section = README.read_text().split("\n## Filters\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert lines[0] == "| filter | value | matches |", lines[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_the_readme_table_lists_exactly_the_declared_filters() -> None:
    """Names in declaration order, and each value as its declaration shows it."""
    documented = []
    for name, value, matches in readme_filter_table():
        if value == "same":  # the README's "same as the row above"
            value = documented[-1][1]
        assert matches, name
        documented.append((name, value))
    declared = [(f"`{spec.name}`", spec.value.shown) for spec in filters_of(CallFilters).values()]
    assert documented == declared


def test_the_declarations_are_the_query_object() -> None:
    declared = filters_of(CallFilters)
    assert tuple(declared) == FILTER_NAMES and len(FILTER_NAMES) == 18
    assert all(spec.requested for spec in declared.values())
    assert {spec.clause.kind for spec in declared.values()} == {
        "between", "time_of_day", "any_of", "equals", "like", "at_least", "present",
    }  # fmt: skip
    not_applied = CallFilters()
    for name, spec in declared.items():
        assert getattr(not_applied, name) == spec.value.empty


def test_a_scope_is_one_more_declaration_that_requests_cannot_name() -> None:
    given = parse_filters({"project_id": ["1", 2], "direction": "in"}, ScopedFilters)
    assert given == ScopedFilters(project_id=(1, 2), direction=("IN",))
    with pytest.raises(InvalidRequest) as caught:
        parse_filters({"project_scope": [2], "from_id": "x"}, ScopedFilters)
    assert caught.value.messages == [
        "Invalid filter: project_scope",  # a client can neither set nor lift its scope
        "Invalid from_id: x (expected an integer >= 0)",
    ]

    scoped = narrow(given, project_scope=["2", 2, 3])  # parsed as project_id is
    assert scoped == ScopedFilters(project_id=(1, 2), direction=("IN",), project_scope=(2, 3))
    assert hash(scoped) != hash(given) and scoped != given  # distinct cache keys


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"project_scope": "x"}, "Invalid project_scope: x (expected an id or a list of ids)"),
        ({"project_scope": []}, "Invalid project_scope: [] (empty: it would narrow nothing)"),
        ({"project_scope": [None, ""]}, 'Invalid project_scope: [null,""] (empty: '),
        ({"project_id": [1]}, "Not a filter the server sets: project_id"),
        ({"scope": [1]}, "Not a filter the server sets: scope"),
    ],
)
def test_narrowing_checks_its_values(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        narrow(ScopedFilters(), **values)


def test_a_scope_once_set_cannot_be_replaced() -> None:
    scoped = narrow(ScopedFilters(), project_scope=[2])
    with pytest.raises(ValueError, match="Already set: project_scope"):
        narrow(scoped, project_scope=[1, 2, 3])


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="one column"):
        Clause("any_of", ("project_id", "user_id"))
    with pytest.raises(ValueError, match="no such kind"):
        Clause("near", ("source",))  # type: ignore[arg-type]

    @dataclass(frozen=True)
    class Undeclared(CallFilters):
        extra: int = 0

    with pytest.raises(TypeError, match=r"Undeclared\.extra is not declared"):
        filters_of(Undeclared)
