"""The call view's timeline (web/callview.py), from a call's legs as the store gives them."""

from __future__ import annotations

from typing import Any

from cdrapi.store.calllog import CallLegs
from cdrapi.web.callview import timeline

TRANSFER = "attended Ana Pop (136) -> Dan Radu (137) at 09:41:20"


def leg(uniqueid: str, time: str, end: str, source: str, destination: str) -> dict[str, Any]:
    """A leg with the columns the timeline reads (an answered call of 60 s, 5 s ringing)."""
    return {
        "uniqueid": uniqueid, "time": time, "time_end": end, "duration": 65, "billsec": 60,
        "ring_time": 5, "source": source, "destination": destination, "direction": "IN",
        "dstchannel_formatted": f"PJSIP/{destination}", "user_fullname": None, "ivr_log": None,
        "ivr_duration": None, "qname": None, "hold_time": None, "queue_log": None,
        "call_status": "ANSWERED", "call_status_info": "DS:ANSWER|HC:16", "transfers": TRANSFER,
    }  # fmt: skip


def test_a_transfer_on_every_leg_of_the_call_is_one_moment() -> None:
    legs = [
        leg("1.1", "2026-11-25 09:39:19", "2026-11-25 09:41:20", "0775291542", "136"),
        leg("1.2", "2026-11-25 09:40:44", "2026-11-25 09:41:20", "136", "137"),
        leg("1.3", "2026-11-25 09:41:20", "2026-11-25 09:43:47", "0775291542", "137"),
    ]
    moments = timeline(CallLegs("1.1", legs, {}), "Europe/Bucharest")
    said = [m for m in moments if m.what.startswith("Transfer: ")]
    assert [(m.time, m.what, m.leg) for m in said] == [
        ("2026-11-25 09:41:20", f"Transfer: {TRANSFER}", 1)
    ]
    assert [m.what for m in moments].count("Hangs up: ANSWERED (DS:ANSWER|HC:16)") == 3
