"""The Asterisk SQL ``cdr`` table as PBXs create it (FreePBX on MariaDB, Asterisk's
PostgreSQL and SQLite schemas), and rows for it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

FREEPBX = """CREATE TABLE cdr (
  calldate datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  clid varchar(80) NOT NULL DEFAULT '', src varchar(80) NOT NULL DEFAULT '',
  dst varchar(80) NOT NULL DEFAULT '', dcontext varchar(80) NOT NULL DEFAULT '',
  channel varchar(80) NOT NULL DEFAULT '', dstchannel varchar(80) NOT NULL DEFAULT '',
  lastapp varchar(80) NOT NULL DEFAULT '', lastdata varchar(80) NOT NULL DEFAULT '',
  duration int(11) NOT NULL DEFAULT '0', billsec int(11) NOT NULL DEFAULT '0',
  disposition varchar(45) NOT NULL DEFAULT '', amaflags int(11) NOT NULL DEFAULT '0',
  accountcode varchar(20) NOT NULL DEFAULT '', uniqueid varchar(32) NOT NULL DEFAULT '',
  userfield varchar(255) NOT NULL DEFAULT '', did varchar(50) NOT NULL DEFAULT '',
  recordingfile varchar(255) NOT NULL DEFAULT '', cnum varchar(80) NOT NULL DEFAULT '',
  cnam varchar(80) NOT NULL DEFAULT '', outbound_cnum varchar(80) NOT NULL DEFAULT '',
  outbound_cnam varchar(80) NOT NULL DEFAULT '', dst_cnam varchar(80) NOT NULL DEFAULT '',
  linkedid varchar(32) NOT NULL DEFAULT '', peeraccount varchar(80) NOT NULL DEFAULT '',
  sequence int(11) NOT NULL DEFAULT '0',
  KEY calldate (calldate), KEY dst (dst), KEY uniqueid (uniqueid), KEY did (did)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""

PGSQL = """CREATE TABLE cdr (
  calldate timestamp with time zone NOT NULL default now(),
  clid varchar(80) NOT NULL default '', src varchar(80) NOT NULL default '',
  dst varchar(80) NOT NULL default '', dcontext varchar(80) NOT NULL default '',
  channel varchar(80) NOT NULL default '', dstchannel varchar(80) NOT NULL default '',
  lastapp varchar(80) NOT NULL default '', lastdata varchar(80) NOT NULL default '',
  duration bigint NOT NULL default 0, billsec bigint NOT NULL default 0,
  disposition bigint NOT NULL default 0, amaflags bigint NOT NULL default 0,
  accountcode varchar(20) NOT NULL default '', uniqueid varchar(150) NOT NULL default '',
  userfield varchar(255) NOT NULL default '', peeraccount varchar(20) NOT NULL default '',
  linkedid varchar(150) NOT NULL default '', sequence int NOT NULL default 0
)"""

SQLITE = """CREATE TABLE cdr (AcctId INTEGER PRIMARY KEY, calldate TEXT, clid TEXT, src TEXT,
  dst TEXT, dcontext TEXT, channel TEXT, dstchannel TEXT, lastapp TEXT, lastdata TEXT,
  duration INTEGER, billsec INTEGER, disposition TEXT, amaflags TEXT, accountcode TEXT,
  uniqueid TEXT, userfield TEXT)"""


def cdr_row(n: int, when: str, status: Any = "ANSWERED", **extra: Any) -> dict[str, Any]:
    """Call ``n`` (uniqueid ``1710400000.<n>``) at ``when``; ``extra`` columns as given."""
    row = {
        "calldate": when, "clid": f'"Client {n}" <07210000{n:02d}>', "src": f"07210000{n:02d}",
        "dst": "0312285000", "dcontext": "from-pstn", "channel": f"PJSIP/orange-{n:08x}",
        "dstchannel": f"PJSIP/101-{n + 1:08x}", "lastapp": "Dial", "duration": 40,
        "billsec": 30 if status in ("ANSWERED", 8) else 0, "disposition": status,
        "uniqueid": f"1710400000.{n}",
    }  # fmt: skip
    row.update(extra)
    return row


def insert_cdrs(conn: Any, rows_: list[dict[str, Any]]) -> None:
    """Insert ``rows_`` (column -> value) into ``cdr`` on ``conn``."""
    for row in rows_:
        names = ", ".join(row)
        conn.execute(text(f"INSERT INTO cdr ({names}) VALUES (:{', :'.join(row)})"), row)
