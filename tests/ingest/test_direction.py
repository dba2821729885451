"""Direction without a config file: every sign the data carries, in the documented order,
and how many rows each sign decided (issue 8 item 9); the 0-second time_end rule (item 7).

The fixtures in tests/fixtures/direction/ are written from the formats: Asterisk's
cdr_csv (21 columns), FreePBX's asteriskcdrdb.cdr columns as a header CSV, and a header
CSV with the vendor columns (srctrunk, dsttrunk, calltype) that vendor exports map to.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdrapi.ingest import IngestRun, ingest_csv, rederive
from cdrapi.ingest.derive import Deriver
from cdrapi.ingest.direction import CALLS, Directions, call_type, context_kind
from cdrapi.ingest.directory import directory_from
from cdrapi.ingest.row import DIRECTION
from tests.ingest.conftest import FIXTURES, raw_cdr, rows

HERE = Path(__file__).parents[1] / "fixtures" / "direction"
TEN_DIGITS = HERE / "ten-digit-extensions-Master.csv"
FREEPBX = HERE / "freepbx-inbound-call.csv"
VENDOR = HERE / "vendor-trunks-and-call-type.csv"


def direction(deriver: Deriver, **fields: str) -> str:
    return str(deriver.row(raw_cdr(**fields))[DIRECTION])


def test_ten_digit_extensions_gsm_gateway_and_pri_lines(store: Engine) -> None:
    summary = ingest_csv(store, [TEN_DIGITS])
    assert rows(store, "uniqueid", "direction") == [
        ("1714986000.1", "INTERNAL"),  # 0212345601 -> 0212345602, both extensions' phones
        ("1714986300.3", "INTERNAL"),  # to a 10-digit extension that did not answer
        ("1714986600.4", "OUT"),  # to 0744000555 through PJSIP/orange-trunk
        ("1714987200.6", "IN"),  # from a chan_dongle GSM gateway, context "default"
        ("1714987800.8", "IN"),  # from a PRI span, DAHDI/i1/...
        ("1714988400.9", "IN"),  # from an analog line without caller id, DAHDI/1-1
        ("1714989000.10", "INTERNAL"),  # Motif/alice -> PJSIP/bob
    ]
    assert summary.directions == {"channel": 6, "default": 1}


def test_freepbx_inbound_call_its_legs_and_an_outbound_one(store: Engine) -> None:
    summary = ingest_csv(store, [FREEPBX])
    assert rows(store, "uniqueid", "direction", "code") == [
        ("1715076000.11", "IN", "inbound"),  # did 0212345600, to an IVR (dst is the DID)
        ("1715076005.12", "IN", "inbound"),  # the IVR's Local leg to extension 101
        ("1715076060.14", "IN", "inbound"),  # 101 transfers the caller to 102
        ("1715076300.15", "OUT", "outbound"),  # macro-dialout-trunk: OUT, not IN for "trunk"
    ]
    assert summary.directions == {"did": 1, "linkedid": 2, "context": 1}


def test_the_legs_of_an_inbound_call_written_before_its_first_leg(store: Engine) -> None:
    """Asterisk writes a Local channel's legs before the call's first leg ends."""
    ingest_csv(store, [FIXTURES / "cdr_csv-21col-Master.csv"])
    legs = rows(store, "linkedid", "uniqueid", "channel_formatted", "direction", "call_codes")
    call = [leg[1:] for leg in legs if leg[0] == "1706372196.12"]
    assert {leg[1] for leg in call} >= {"Local/ch1@TimeDelay", "SIP/905407"}
    assert {leg[2] for leg in call} == {"IN"}
    assert ("1706372196.14", "Local/ch1@TimeDelay", "IN", "in no answer") in call


def test_vendor_trunk_names_and_call_type(store: Engine) -> None:
    summary = ingest_csv(store, [VENDOR])
    assert rows(store, "source", "destination", "direction") == [
        ("1234", "1001", "IN"),  # came in on trunk "Telekom SIP", a short caller id
        ("1001", "112", "OUT"),  # the export's call type says Outbound
        ("1001", "1899", "OUT"),  # went out on trunk "GSM-Gateway"
        ("1001", "1002", "INTERNAL"),
    ]
    assert summary.directions == {"trunk-name": 2, "call-type": 2}


def test_a_zero_second_call_ends_when_it_starts(store: Engine) -> None:
    ingest_csv(store, [VENDOR, FREEPBX])  # header CSVs without an end column
    ends = rows(store, "uniqueid", "time", "time_end", "duration")
    assert ("1715166900.24", "2024-05-08 11:15:00", "2024-05-08 11:15:00", 0) in ends
    assert ("1715076300.15", "2024-05-07 10:05:00", "2024-05-07 10:05:00", 0) in ends
    assert ("1715166000.21", "2024-05-08 11:00:00", "2024-05-08 11:00:40", 40) in ends


def test_rederive_keeps_directions_from_signs_it_cannot_see(store: Engine) -> None:
    """Trunk names, call types and the file's order of legs are not stored."""
    ingest_csv(store, [VENDOR, FREEPBX])
    before = rows(store, "uniqueid", "direction")
    summary = rederive(store)
    assert rows(store, "uniqueid", "direction") == before
    assert summary.directions == {"stored": 7, "did": 1}
    # configured trunks still decide, as at ingestion
    trunks = directory_from({"trunks": [{"channel": "PJSIP/vodafone"}]})
    summary = rederive(store, IngestRun(directory=trunks))
    assert summary.directions == {"trunk": 8}
    assert dict(rows(store, "uniqueid", "direction"))["1715166000.21"] == "INTERNAL"


def test_configured_trunks_decide_alone() -> None:
    deriver = Deriver(directory_from({"trunks": [{"channel": "SIP/provider"}]}))
    assert direction(deriver, did="0212345600", channel="PJSIP/101-00000001") == "INTERNAL"
    assert direction(deriver, channel="SIP/provider-00000002", dcontext="outrt-1") == "IN"
    assert deriver.take_signs() == {"trunk": 2}


@pytest.mark.parametrize(
    ("fields", "expected", "sign"),
    [
        ({"did": "0212345600", "dcontext": "outrt-1"}, "IN", "did"),
        ({"srctrunk": "Vodafone", "calltype": "Outbound"}, "IN", "trunk-name"),
        ({"dsttrunk": "Vodafone", "dcontext": "from-pstn"}, "OUT", "trunk-name"),
        ({"calltype": "Incoming call", "dcontext": "outrt-1"}, "IN", "call-type"),
        ({"calltype": "transfer", "dcontext": "from-trunk-sip-voipms"}, "IN", "context"),
        ({"dcontext": "from-did-direct", "dst": "101"}, "IN", "context"),
        ({"dcontext": "sub-dialout-trunk", "dst": "0744000999"}, "OUT", "context"),
        ({"dcontext": "public-direct-dial", "src": "101"}, "IN", "context"),
        ({"dcontext": "from-internal", "src": "101", "dst": "0744000999",
          "channel": "PJSIP/101-00000001"}, "OUT", "context"),
        # an inbound call forwarded to a mobile: the caller is outside, not an extension
        ({"dcontext": "from-internal", "src": "0744000111", "dst": "0744000999",
          "channel": "PJSIP/vodafone-00000001"}, "IN", "number"),
        ({"dcontext": "default", "channel": "PJSIP/gw-telekom-00000001", "src": "1234",
          "dst": "101"}, "IN", "channel"),
        ({"dcontext": "default", "channel": "IAX2/192.168.1.50:4569-1234", "dst": "101"},
         "IN", "channel"),
        ({"dcontext": "default", "channel": "PJSIP/101-00000001", "src": "101",
          "dstchannel": "Dongle/dongle0-0100000001", "dst": "1899"}, "OUT", "channel"),
        ({"dcontext": "default", "channel": "PJSIP/101-00000001", "src": "101",
          "dst": "7000"}, "INTERNAL", "default"),  # a queue or ring group number
        ({"dcontext": "ext-queues", "src": "+40744000111", "dst": "7000"}, "IN", "number"),
    ],
)  # fmt: skip
def test_each_sign(fields: dict[str, str], expected: str, sign: str) -> None:
    deriver = Deriver()
    assert direction(deriver, **fields) == expected
    assert deriver.take_signs() == {sign: 1}


def test_the_directory_users_extensions_give_their_length() -> None:
    users = directory_from({"users": [{"extension": "20001001", "fullname": "Ana"}]})
    call = {"dcontext": "from-internal", "channel": "PJSIP/ana-00000001", "src": "20001001",
            "dst": "20001002"}  # fmt: skip
    assert direction(Deriver(users), **call) == "INTERNAL"  # 8-digit extensions
    assert direction(Deriver(), **call) == "IN"  # without: a phone number calls


def test_a_leg_inherits_its_calls_direction_only_after_it() -> None:
    deriver = Deriver()
    leg = {"dcontext": "from-internal", "src": "101", "dst": "102", "uniqueid": "1.2",
           "linkedid": "1.1", "channel": "PJSIP/101-00000001",
           "dstchannel": "PJSIP/102-00000002"}  # fmt: skip
    assert direction(deriver, **leg) == "INTERNAL"  # its call not seen yet
    assert direction(deriver, did="0212345600", uniqueid="1.1", linkedid="1.1") == "IN"
    assert direction(deriver, **{**leg, "uniqueid": "1.3"}) == "IN"
    # an internal call's legs keep their own signs: a transfer out of it is a call out
    assert direction(deriver, **{**leg, "uniqueid": "2.1", "linkedid": "2.1"}) == "INTERNAL"
    out = {**leg, "uniqueid": "2.2", "linkedid": "2.1", "dst": "0744000999", "dstchannel": ""}
    assert direction(deriver, **out) == "OUT"
    assert deriver.take_signs() == {"channel": 2, "did": 1, "linkedid": 1, "context": 1}


def test_the_linkedid_memory_is_bounded() -> None:
    directions = Directions()
    for n in range(CALLS + 10):
        linkedid = f"{n}.0"
        directions.decide("1", "", "", "", "", "", "", "", "", linkedid, linkedid)
    directions.bound()
    remembered = [n for n in range(CALLS + 10) if directions.call(f"{n}.0")]
    assert len(remembered) <= CALLS
    assert remembered[-1] == CALLS + 9  # the newest are kept
    for n in range(CALLS + 10, CALLS + 10 + CALLS // 2):  # and when the memory moves on
        linkedid = f"{n}.0"
        directions.decide("", "", "1", "", "", "", "", "", "", linkedid, linkedid)
        directions.bound()
    assert directions.call(f"{CALLS + 9 + CALLS // 2}.0") == "OUT"
    assert directions.call(f"{CALLS + 10}.0") == "OUT"
    assert not directions.call("0.0")


def test_context_and_call_type_tables() -> None:
    assert [context_kind(c) for c in ("from-pstn", "ext-did-0001", "from-trunk-sip-x",
                                      "stadion-pstn", "macro-dialout-trunk", "outrt-3",
                                      "outbound-allroutes", "from-internal", "cos-all",
                                      "ivr-2", "TimeDelay")] == [
        "IN", "IN", "IN", "IN", "OUT", "OUT", "OUT", "internal", "internal", "", ""]  # fmt: skip
    assert [call_type(v) for v in ("Inbound", "OUTGOING", "internal", "Local", "in", "Out",
                                   "Callback", "")] == [
        "IN", "OUT", "INTERNAL", "INTERNAL", "IN", "OUT", None, None]  # fmt: skip
