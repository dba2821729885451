"""An account's scope is one more filter: a scoped count and page hold exactly the calls
an independent Python reading of the scope keeps, with any request filters, on SQLite and
PostgreSQL; a request can neither name a scope nor lift one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from cdrapi.protocol.errors import InvalidRequest
from cdrapi.protocol.filters import CallFilters, ScopedCallFilters, parse_filters, parse_request
from cdrapi.store.directory import replace_directory
from cdrapi.store.engine import connect
from cdrapi.store.pages import CallPages
from cdrapi.web.auth import Account, scoped
from tests.data import load, oracle, sample_rows

#: The directory's users: the calls' user_id 10, 11 and 12 have these extensions.
EXTENSIONS = {10: "205", 11: "300", 12: "101"}

ACCOUNTS = [
    Account(1, "project one", (1,), ()),
    Account(2, "both projects", (1, 2), ()),
    Account(3, "agent 101", (), ("101",)),  # as caller or called, or as the call's user
    Account(4, "agent 300", (), ("300",)),  # never a number in the sample: its user only
    Account(5, "two agents", (), ("100", "205")),
    Account(6, "101 in project 2", (2,), ("101",)),
    Account(7, "nobody's", (99,), ()),
]
REQUESTS: list[dict[str, Any]] = [
    {},
    {"direction": ["IN", "OUT"]},
    {"call_status": "ANSWERED", "date_between": ["2024-01-05", "2024-01-20"]},
    {"telephone_like": "072", "project_id": [1, 2]},
    {"user_id": [10, 12], "has_recording_file": "1"},
]


def sees(account: Account, row: dict[str, Any]) -> bool:
    """Whether ``account`` may see ``row``: written from the scope's definition."""
    if account.project_ids and row["project_id"] not in account.project_ids:
        return False
    if account.extensions:
        parties = {row["source"], row["destination"], EXTENSIONS.get(row["user_id"])}
        if not parties & set(account.extensions):
            return False
    return True


@pytest.fixture
def loaded(db_url: str) -> Iterator[tuple[Engine, list[dict[str, Any]]]]:
    engine = connect(db_url)
    replace_directory(
        engine,
        users=[
            {"id": user, "extension": extension, "fullname": f"Agent {extension}"}
            for user, extension in EXTENSIONS.items()
        ],
    )
    rows = load(engine, sample_rows(600, seed=11))
    yield engine, rows
    engine.dispose()


def test_a_scoped_count_and_page_are_the_calls_the_scope_keeps(
    loaded: tuple[Engine, list[dict[str, Any]]],
) -> None:
    engine, rows = loaded
    pages = CallPages(engine)
    for raw in REQUESTS:
        filters = parse_filters(raw, CallFilters)
        for account in ACCOUNTS:
            expected = [row["id"] for row in rows if oracle(row, raw) and sees(account, row)]
            page = pages.fetch(scoped(filters, account), 1)
            assert page.row_count == len(expected), (raw, account)
            assert [found[0] for found in page.rows] == expected[:100], (raw, account)
        everything = [row["id"] for row in rows if oracle(row, raw)]
        admin = Account(8, "admin", (), ())
        assert scoped(filters, admin) is filters
        assert pages.fetch(filters, 1).row_count == len(everything)
    # Each scope keeps some calls and leaves some out (but the one naming no project).
    counts = [pages.fetch(scoped(CallFilters(), a), 1).row_count for a in ACCOUNTS]
    assert all(0 < count < len(rows) for count in counts[:-1]) and counts[-1] == 0


def test_a_request_can_neither_name_nor_lift_a_scope() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request({"filters": {"project_scope": [1], "extension_scope": ["101"]}})
    assert caught.value.messages == [
        "Invalid filter: project_scope",
        "Invalid filter: extension_scope",
    ]
    narrowed = scoped(CallFilters(direction=("IN",)), ACCOUNTS[5])
    assert narrowed == ScopedCallFilters(
        direction=("IN",), project_scope=(2,), extension_scope=("101",)
    )
    with pytest.raises(ValueError, match="Already set: project_scope"):
        scoped(narrowed, ACCOUNTS[1])


def test_filters_of_another_kind_are_refused_not_stripped() -> None:
    from dataclasses import dataclass

    from cdrapi.protocol.filters import declare
    from cdrapi.protocol.values import TEXTS

    @dataclass(frozen=True, slots=True)
    class WithQueue(CallFilters):
        qname: tuple[str, ...] = declare(TEXTS, "any_of", "qname")

    with pytest.raises(TypeError, match="subclass ScopedCallFilters"):
        scoped(WithQueue(qname=("sales",)), ACCOUNTS[0])
