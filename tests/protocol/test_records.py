"""The 43-field record: key order, vendor types, durations."""

from __future__ import annotations

from cdrapi.protocol.records import RECORD_COLUMNS, RECORD_KEYS, duration_text, record

VENDOR_EXAMPLE_KEYS = (
    "id uniqueid linkedid time time_end caller_id source destination direction "
    "channel_formatted dstchannel_formatted customer_id user_fullname qname code call_status "
    "call_status_info call_codes accounting_code accounting_value comments monitor_files "
    "monitor_urls recording_file recording_url transfers project inbound_route inbound_route_id "
    "queue_log ivr_log external_id external_info agent_details is_recovered transcription_id "
    "transcription_text bill_duration duration bill_minutes ivr_duration hold_time ring_time"
).split()


def test_keys_are_the_vendor_example_keys_in_order() -> None:
    assert list(RECORD_KEYS) == VENDOR_EXAMPLE_KEYS
    assert len(RECORD_COLUMNS) == 43


def test_durations() -> None:
    assert duration_text(0) == "00:00:00"
    assert duration_text(None) == "00:00:00"
    assert duration_text(15) == "00:00:15"
    assert duration_text(3661) == "01:01:01"
    assert duration_text(360000) == "100:00:00"


def test_record_types() -> None:
    row = [None] * 43
    row[0] = 29056
    values = dict(zip(RECORD_COLUMNS, range(43), strict=True))
    for column, seconds in (("billsec", 0), ("duration", 15)):
        row[values[column]] = seconds
    row[RECORD_COLUMNS.index("inbound_route_id")] = 4
    row[RECORD_COLUMNS.index("is_recovered")] = 1
    row[RECORD_COLUMNS.index("billsec")] = 61
    row[RECORD_KEYS.index("bill_minutes")] = 61
    result = record(row)
    assert result["id"] == "29056"
    assert result["inbound_route_id"] == "4"
    assert result["is_recovered"] == "1"
    assert result["bill_duration"] == "00:01:01"
    assert result["bill_minutes"] == 2
    assert result["duration"] == "00:00:15"
    assert result["hold_time"] == "00:00:00"
    assert result["customer_id"] is None
