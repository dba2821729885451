"""The fast split of cel_custom lines (``str.split`` on the shapes cel_custom writes)
gives exactly what the csv module gives: the same events, the same rejects with the
same file:line and reason, for any values (quotes, commas, newlines, carriage returns,
the event separators, NULL), quoted the way csv writes them or broken by hand."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdrapi.ingest.cel_events import DEFAULT_LAYOUT
from cdrapi.ingest.cel_file import CelChunks

ZONE = dt.timezone(dt.timedelta(hours=2))
TIME = DEFAULT_LAYOUT.index("eventtime")
TYPE = DEFAULT_LAYOUT.index("eventtype")
IDS = (DEFAULT_LAYOUT.index("uniqueid"), DEFAULT_LAYOUT.index("linkedid"))

#: Text with every character that matters to CSV or to the events' texts.
TEXT = st.text(alphabet='"",,\n\r\x1f\x1e\\NUL a{}:\x00\xe9', max_size=12)
VALUES = st.one_of(TEXT, st.sampled_from(["", "NULL", "\\N", '{"a": "b", "c": 1}', '","']))
TIMES = st.one_of(
    st.sampled_from(["1710403200.000000", "1710403200.5", "2024-03-14 10:00:00", " 1", "soon"]),
    TEXT,
)
TYPES = st.one_of(st.sampled_from(["CHAN_START", "APP_START", "4", "USER_DEFINED", ""]), TEXT)
IDENTS = st.one_of(st.sampled_from(["1710403200.1", "1710403200.2", ""]), TEXT)


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@st.composite
def _line(draw: st.DrawFn) -> str:
    """A line of cel_custom's template (18 or 19 columns, sometimes others), each field
    quoted as csv writes it, left bare, or quoted without doubling its quotes."""
    width = draw(st.sampled_from([18, 19, 19, 19, 2, 20]))
    fields = [draw(VALUES) for _ in range(width)]
    if width >= 18:
        fields[TIME], fields[TYPE] = draw(TIMES), draw(TYPES)
        for index in IDS:
            fields[index] = draw(IDENTS)
    how = draw(st.sampled_from(["quoted", "quoted", "bare", "mixed"]))
    out = []
    for value in fields:
        kind = how if how != "mixed" else draw(st.sampled_from(["quoted", "bare", "broken"]))
        out.append(
            _quoted(value) if kind == "quoted" else f'"{value}"' if kind == "broken" else value
        )
    return ",".join(out) + draw(st.sampled_from(["", "", "\r"]))


def _parsed(data: bytes, fast: bool, first_line: int) -> tuple[object, ...]:
    chunks = CelChunks("Master.csv", ZONE)
    chunks.fast = fast
    chunks.start_file(data.split(b"\n", 1)[0], "Master.csv")
    batch = chunks.parse(data, first_line)
    rejects = [(r.file, r.line, r.reason, r.raw) for r in batch.rejects]
    return batch.lines, batch.events, rejects


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_line(), min_size=1, max_size=6), first_line=st.sampled_from([1, 41]))
def test_fast_split_reads_every_line_as_the_csv_module(lines: list[str], first_line: int) -> None:
    data = ("\n".join(lines) + "\n").encode()
    assert _parsed(data, True, first_line) == _parsed(data, False, first_line)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(VALUES.filter(lambda value: "\n" not in value), min_size=19, max_size=19))
def test_any_quoted_values_are_read_back_as_written(values: list[str]) -> None:
    """A template line csv-quoted from any values without a newline (a record of two
    lines is rejected) is one event whose extra is its last value (a separator in it
    read as a space), whichever way it is split."""
    values[TIME], values[TYPE] = "1710403200.000000", "ANSWER"
    values[IDS[0]] = values[IDS[1]] = "1710403200.1"
    data = (",".join(_quoted(value) for value in values) + "\n").encode()
    fast = _parsed(data, True, 1)
    assert fast == _parsed(data, False, 1)
    lines, events, rejects = fast
    assert (lines, rejects) == (1, [])
    text = events[0][1]  # type: ignore[index]
    blank = {"NULL": "", "\\N": ""}
    extra = blank.get(values[18], values[18]).translate({0x1E: " ", 0x1F: " "})
    assert text.split("\x1f")[-1] == extra
