"""Filters to SQL: the wildcard rule, and the trigram prefilter never changing a result."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, or_, select

from cdrapi.protocol.filters import CallFilters
from cdrapi.store.engine import connect
from cdrapi.store.queries import like_pattern, where_clauses
from cdrapi.store.schema import calls
from tests.data import load, sample_rows


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
