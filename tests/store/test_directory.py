"""The directory and the checkpoints through the writer: the directory replaced and read
back as stored, by id; a position saved with its batch read back (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cdrapi.store.engine import connect
from cdrapi.store.writer import Writer

DIRECTORY = {
    "projects": [{"id": 2, "name": "Sales"}, {"id": 1, "name": "Support"}],
    "users": [{"id": 7, "extension": "101", "fullname": "Maria Ionescu",
               "channel_pattern": "PJSIP/maria", "project_id": 1}],
    "trunks": [{"id": 1, "name": "Orange", "channel_pattern": "PJSIP/orange-*"}],
    "inbound_routes": [{"id": 1, "did": "0312285000", "name": "Support line", "project_id": 1}],
    "queues": [{"id": 1, "name": "support", "project_id": None}],
}  # fmt: skip


@pytest.fixture
def store(db_url: str) -> Iterator[Writer]:
    engine = connect(db_url)
    yield Writer(engine, {})
    engine.dispose()


def test_the_directory_is_read_back_as_it_was_stored(store: Writer) -> None:
    assert store.read_directory() == {name: [] for name in DIRECTORY}
    store.replace_directory(DIRECTORY)
    read = store.read_directory()
    assert read["projects"] == [{"id": 1, "name": "Support"}, {"id": 2, "name": "Sales"}]
    assert {name: rows for name, rows in read.items() if name != "projects"} == {
        name: rows for name, rows in DIRECTORY.items() if name != "projects"
    }
    store.replace_directory({"users": [], "queues": [{"id": 3, "name": "sales", "project_id": 2}]})
    read = store.read_directory()  # the tables given replaced, the others left alone
    assert read["users"] == [] and read["queues"] == [{"id": 3, "name": "sales", "project_id": 2}]
    assert read["projects"] == [{"id": 1, "name": "Support"}, {"id": 2, "name": "Sales"}]


def test_a_checkpoint_is_read_back_after_its_batch(store: Writer) -> None:
    columns = ("source_key", "time", "direction", "call_status")
    assert store.load_checkpoint("csv:/var/log/asterisk/cdr-csv/Master.csv") is None
    for n in (1, 2):
        store.write_batch(
            columns, [(f"k{n}", "2024-03-14 09:00:00", "IN", "ANSWERED")],
            checkpoint=("csv:/var/log/asterisk/cdr-csv/Master.csv", f'{{"offset": {n}}}'),
        )  # fmt: skip
    assert store.load_checkpoint("csv:/var/log/asterisk/cdr-csv/Master.csv") == '{"offset": 2}'
    assert store.load_checkpoint("csv:/other") is None
