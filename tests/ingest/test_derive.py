"""The directory and the derived fields: direction, user, project, route, is_recovered."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from cdrapi.ingest import DirectoryError, IngestRun, ingest_csv, load_directory, rederive
from cdrapi.ingest.derive import format_channel
from cdrapi.ingest.directory import directory_from
from cdrapi.settings import Settings, load_settings
from tests.ingest.conftest import FIXTURES, append, cdr_line, rows

CONFIG = FIXTURES / "cdrapi.toml"


def _line(n: int, src: str, dst: str, chan: str, dchan: str, status: str = "ANSWERED",
          when: str = "2024-03-14 09:00:00", app: str = "Dial", data: str = "") -> str:  # fmt: skip
    bill = 20 if status == "ANSWERED" else 0
    return (
        f'"","{src}","{dst}","from-internal","""Someone"" <{src}>","{chan}","{dchan}","{app}",'
        f'"{data}","{when}",,"{when}",{bill + 7},{bill},"{status}","DOCUMENTATION",'
        f'"1710400000.{n}","","","1710400000.{n}",0\n'
    )


def test_the_config_file_holds_settings_and_directory() -> None:
    assert load_settings(CONFIG).timezone == "Europe/Bucharest"  # tables left to the directory
    directory = load_directory(CONFIG)
    assert [u.fullname for u in directory.users] == ["Maria Ionescu", "Andrei Pop"]
    assert directory.trunks[0].id == 1 and directory.inbound_routes[0].id == 5


def test_direction_user_project_route_code(store: Engine, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(
        master,
        _line(1, "0721000001", "0312285000", "PJSIP/orange-sip-0000001a", "PJSIP/101-0000001b"),
        _line(2, "101", "0744000001", "PJSIP/101-0000001c", "PJSIP/orange-sip-0000001d", "BUSY"),
        _line(3, "102", "101", "SIP/102-0000001e", "PJSIP/101-0000001f", "NO ANSWER"),
        _line(
            4,
            "0721000009",
            "0372110200",
            "PJSIP/orange-1-00000020",
            "Local/102@from-queue-00000021;1",
            app="Queue",
            data="vanzari,t,,,300",
        ),
    )
    ingest_csv(store, [master], IngestRun(directory=load_directory(CONFIG)))
    got = rows(store, "direction", "user_fullname", "user_id", "project", "inbound_route",
               "inbound_route_id", "code", "qname", "call_codes", "channel_formatted",
               "dstchannel_formatted")  # fmt: skip
    assert got == [
        ("IN", "Maria Ionescu", 11, "Suport Clienți", "Linie suport", 5, "inbound", None,
         "in answered", "PJSIP/orange-sip", "PJSIP/101"),
        ("OUT", "Maria Ionescu", 11, "Suport Clienți", None, None, "outbound", None,
         "out busy", "PJSIP/101", "PJSIP/orange-sip"),
        ("INTERNAL", "Andrei Pop", 12, "Vânzări", None, None, "internal", None,
         "int no answer", "SIP/102", "PJSIP/101"),
        ("IN", "Andrei Pop", 12, "Vânzări", None, None, "queue", "vanzari",
         "queue answered", "PJSIP/orange-1", "Local/102@from-queue"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("channel", "formatted"),
    [
        ("PJSIP/john-doe-0000001a", "PJSIP/john-doe"),
        ("PJSIP/john-doe", "PJSIP/john-doe"),  # no suffix: the endpoint's own name stays
        ("PJSIP/orange-1", "PJSIP/orange-1"),
        ("SIP/192.168.1.10-0000002b", "SIP/192.168.1.10"),
        ("Local/ch1@TimeDelay-00000000;2", "Local/ch1@TimeDelay"),
        ("Local/101@from-internal-0000002a;1", "Local/101@from-internal"),
        ("Local/101@default-7e4c,1", "Local/101@default"),  # Asterisk 1.4
        ("Local/101@default-7e4c;2", "Local/101@default"),  # Asterisk 1.6
        ("DAHDI/1-1", "DAHDI/1"),
        ("DAHDI/i1/5551234-3a", "DAHDI/i1/5551234"),
        ("DAHDI/pseudo-1804289383", "DAHDI/pseudo"),
        ("Zap/4-2", "Zap/4"),
        ("IAX2/peer-1234", "IAX2/peer"),
        ("IAX2/192.168.1.50:4569-12345", "IAX2/192.168.1.50:4569"),
        ("Motif/alice-753b", "Motif/alice"),
        ("Gtalk/bob-0a1f", "Gtalk/bob"),
        ("Dongle/dongle0-0100000001", "Dongle/dongle0"),
        ("Skinny/101@SEP001122334455-3", "Skinny/101@SEP001122334455"),
        ("SCCP/101-0000001A", "SCCP/101"),
        ("MGCP/aaln/1@gw1-1", "MGCP/aaln/1@gw1"),
        ("USTM/101@phone-0x55d0c8a3f2a0", "USTM/101@phone"),
        ("mISDN/1-u45", "mISDN/1"),
        ("SIP/101-00000001<ZOMBIE>", "SIP/101"),
        ("", ""),
    ],
)
def test_channel_formatting(channel: str, formatted: str) -> None:
    assert format_channel(channel) == formatted


def test_a_motif_channel_stored_without_its_suffix(store: Engine) -> None:
    ingest_csv(store, [FIXTURES.parent / "direction" / "ten-digit-extensions-Master.csv"])
    assert ("Motif/alice", "PJSIP/bob") in rows(store, "channel_formatted", "dstchannel_formatted")


def test_call_status_info_from_dialstatus_and_hangupcause(store: Engine, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "calldate,src,dst,duration,billsec,disposition,uniqueid,dialstatus,hangupcause\n"
        "2024-03-14 09:00:00,101,0744000001,30,0,FAILED,1.1,CHANUNAVAIL,3\n"
        "2024-03-14 09:01:00,101,0744000001,30,0,BUSY,1.2,,\n"
    )
    ingest_csv(store, [export])
    assert rows(store, "call_status_info") == [
        ("DS:CHANUNAVAIL|HC:3|HI:No route to destination",),
        ("DS:BUSY|HC:17|HI:User busy",),
    ]


def test_is_recovered_within_the_window_either_direction(store: Engine, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    trunk, agent = "PJSIP/orange-sip-00000001", "PJSIP/101-00000002"
    append(
        master,
        _line(1, "0721000001", "0312285000", trunk, agent, "NO ANSWER", "2024-03-14 09:00:00"),
        _line(2, "0721000002", "0312285000", trunk, agent, "NO ANSWER", "2024-03-14 09:00:00"),
        _line(3, "0721000003", "0312285000", trunk, agent, "BUSY", "2024-03-14 09:00:00"),
        # called back by an agent 2 hours later: recovered
        _line(4, "101", "0721000001", agent, trunk, "ANSWERED", "2024-03-14 11:00:00"),
        # called again 25 hours later: outside the 24 h window
        _line(5, "0721000002", "0312285000", trunk, agent, "ANSWERED", "2024-03-15 10:00:00"),
    )
    ingest_csv(store, [master], IngestRun(directory=load_directory(CONFIG)))
    assert [r[0] for r in rows(store, "is_recovered")] == [1, 0, 0, None, None]
    # the third caller gets through the next morning, in a later import: updated then
    append(master, _line(6, "0721000003", "0312285000", trunk, agent, "ANSWERED",
                         "2024-03-15 08:00:00"))  # fmt: skip
    ingest_csv(store, [master])
    assert [r[0] for r in rows(store, "is_recovered")] == [1, 0, 1, None, None, None]
    # a 48 h window, derived again: the second caller counts too
    rederive(store, IngestRun(Settings(recovered_window=48)))
    assert [r[0] for r in rows(store, "is_recovered")] == [1, 1, 1, None, None, None]


def test_rederive_after_a_directory_change(store: Engine, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), cdr_line(2))  # PJSIP/orange -> PJSIP/101, context from-pstn
    ingest_csv(store, [master])
    assert rows(store, "direction", "user_fullname") == [("IN", None)] * 2
    ids_before = rows(store, "id")
    directory = directory_from({
        "projects": [{"name": "Suport"}],
        "users": [{"extension": "101", "fullname": "Maria Ionescu", "channel": "PJSIP/101",
                   "project": 1}],
        "trunks": [{"channel": "PJSIP/orange"}],
    })  # fmt: skip
    summary = rederive(store, IngestRun(directory=directory))
    assert summary.updated == 2
    assert (
        rows(store, "direction", "user_fullname", "project")
        == [("IN", "Maria Ionescu", "Suport")] * 2
    )
    assert rows(store, "id") == ids_before


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[users]]\nfullname = "X"\n', "users entry 1: missing extension or channel"),
        ('[[trunks]]\nname = "T"\n', "trunks entry 1: missing channel"),
        ('[[users]]\nextension = "1"\nfullname = "X"\nproject = 7\n', "unknown project 7"),
        ('[[projects]]\nname = "P"\ncolour = "red"\n', "unknown key(s) colour"),
        ('[[projects]]\nid = "one"\nname = "P"\n', "id must be an integer"),
        ("projects = [\n", "cdrapi.toml: Invalid value"),
    ],
)
def test_directory_errors_name_the_problem(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "cdrapi.toml"
    path.write_text(toml)
    with pytest.raises(DirectoryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_directory(path)
