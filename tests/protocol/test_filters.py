"""Validation of ``page`` and the 18 filters into a typed query (SPEC §4)."""

from __future__ import annotations

from typing import Any

import pytest

from cdrapi.protocol.errors import InvalidRequest
from cdrapi.protocol.filters import FILTER_NAMES, CallFilters, parse_request


def filters(**given: Any) -> CallFilters:
    return parse_request({"filters": given}).filters


def test_the_eighteen_filters_of_the_vendor_page() -> None:
    assert len(FILTER_NAMES) == 18
    vendor_order = (
        "date_between project_id user_id inbound_route_id direction call_status telephone_like "
        "telephone source destination hour_between from_id uniqueid linkedid external_id "
        "has_transcription has_monitor_file has_recording_file"
    ).split()
    assert set(FILTER_NAMES) == set(vendor_order)


def test_the_vendor_example_request_is_valid_and_applies_one_filter() -> None:
    nulls = dict.fromkeys(FILTER_NAMES)
    request = parse_request(
        {
            "page": 1,
            "filters": {**nulls, "date_between": ["2024-01-01 00:00:00", "2024-01-15 23:59:59"]},
        }
    )
    assert request.page == 1
    assert request.filters == CallFilters(
        date_between=("2024-01-01 00:00:00", "2024-01-15 23:59:59")
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["2024-01-15", "2024-01-15"], ("2024-01-15 00:00:00", "2024-01-15 23:59:59")),
        (["2024-01-15 10:30", "2024-01-15 10:30"], ("2024-01-15 10:30:00", "2024-01-15 10:30:59")),
        (["2024-02-29", None], ("2024-02-29 00:00:00", None)),
        ({0: "", 1: "2024-01-01"}, (None, "2024-01-01 23:59:59")),
        ({1: "2024-01-01"}, (None, "2024-01-01 23:59:59")),
        (["2024-01-01"], ("2024-01-01 00:00:00", None)),
    ],
)
def test_date_between_widens_the_to_end(given: Any, expected: Any) -> None:
    assert filters(date_between=given).date_between == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["08", "17"], ("08:00:00", "17:59:59")),
        (["22:00", "06:00"], ("22:00:00", "06:00:59")),
        (["10:59", "10:59"], ("10:59:00", "10:59:59")),
        (["", "12"], (None, "12:59:59")),
    ],
)
def test_hour_between(given: Any, expected: Any) -> None:
    assert filters(hour_between=given).hour_between == expected


def test_lists_scalars_and_php_arrays_are_the_same() -> None:
    assert filters(project_id="3").project_id == (3,)
    assert filters(project_id=[3, "4", 3]).project_id == (3, 4)
    assert filters(project_id={0: "3", 1: "4"}).project_id == (3, 4)
    assert filters(user_id=[None, "", 5]).user_id == (5,)
    assert filters(direction=["in", "Out"]).direction == ("IN", "OUT")
    assert filters(call_status="no_answer").call_status == ("NO ANSWER",)
    assert filters(call_status="No Answer").call_status == ("NO ANSWER",)
    assert filters(uniqueid=["1.1", "1.2"]).uniqueid == ("1.1", "1.2")
    assert filters(linkedid=17).linkedid == ("17",)


def test_flags_and_from_id() -> None:
    for word in ("1", "true", "YES", 1, True):
        assert filters(has_transcription=word).has_transcription is True
    for word in ("0", "false", "No", 0, False):
        assert filters(has_monitor_file=word).has_monitor_file is False
    assert filters(from_id="0").from_id == 0
    assert filters(from_id=12).from_id == 12


def test_empty_values_are_not_applied() -> None:
    assert filters(**dict.fromkeys(FILTER_NAMES, "")) == CallFilters()
    assert filters(**{key: [] for key in FILTER_NAMES}) == CallFilters()
    assert parse_request({"filters": ""}).filters == CallFilters()
    assert parse_request({"filters": []}).filters == CallFilters()


def test_page_defaults_and_digit_strings() -> None:
    assert parse_request({}).page == 1
    assert parse_request({"page": ""}).page == 1
    assert parse_request({"page": "7"}).page == 7


def test_every_problem_is_one_message() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request({"page": 0, "filters": {"x": 1, "telephone": {}, "from_id": "a"}})
    assert caught.value.messages == [
        "Invalid page: 0",
        "Invalid filter: x",
        "Invalid from_id: a (expected an integer >= 0)",
    ]


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request({"filters": {"direction": "x" * 500}})
    (message,) = caught.value.messages
    assert len(message) < 300 and "..." in message


def test_filters_are_hashable_cache_keys() -> None:
    assert hash(filters(project_id=[1, 2])) == hash(filters(project_id=["1", "2"]))
