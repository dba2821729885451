"""The store's tables: call records and the directory they refer to.

``calls`` holds one row per Asterisk CDR, already shaped like the 43-field API record
(SPEC §6), plus the raw Asterisk columns that ingestion needs to re-derive fields later.
Names that belong to the directory (``user_fullname``, ``project``, ``inbound_route``) are
stored on the call as they were when the call was recorded, next to their ids: the record
is a historical fact, and a page of results needs no joins.

Times are ``YYYY-MM-DD HH:MM:SS`` text in the PBX's local time, compared as text; on
PostgreSQL they use the ``C`` collation so that comparison is byte order whatever the
database's locale. Durations are whole seconds.

Substring search on numbers (``telephone_like``, ``source``, ``destination``) uses a
trigram index over ``calls``: :mod:`cdrapi.store.search` owns it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

__all__ = [
    "SECONDARY_INDEXES",
    "calls",
    "cel_calls",
    "checkpoints",
    "inbound_routes",
    "meta",
    "metadata",
    "projects",
    "queue_calls",
    "queues",
    "trunks",
    "users",
    "web_accounts",
    "web_keys",
]

metadata = MetaData()


def _id_type() -> TypeEngine[int]:
    # INTEGER PRIMARY KEY is SQLite's rowid; BIGINT identity elsewhere.
    return BigInteger().with_variant(Integer(), "sqlite")


def _sortable(length: int) -> TypeEngine[str]:
    """Text compared byte by byte on every backend (times, numbers)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("extension", String(80), nullable=False),
    Column("fullname", String(200), nullable=False),
    Column("channel_pattern", String(200)),
    Column("project_id", Integer),
)

queues = Table(
    "queues",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("project_id", Integer),
)

trunks = Table(
    "trunks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("channel_pattern", String(200), nullable=False),
)

inbound_routes = Table(
    "inbound_routes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("did", String(80), nullable=False),
    Column("name", String(200), nullable=False),
    Column("project_id", Integer),
)

# One row per key; ``version`` grows with every committed write to ``calls`` so that
# API workers can tell whether cached counts and page boundaries still hold.
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
)

calls = Table(
    "calls",
    metadata,
    Column("id", _id_type(), primary_key=True, autoincrement=True),
    # Identity of the source row, so the same CDR ingested twice stays one record.
    Column("source_key", String(255), unique=True),
    Column("uniqueid", String(150), nullable=False, server_default=""),
    Column("linkedid", String(150), nullable=False, server_default=""),
    Column("sequence", Integer),
    Column("time", _sortable(19), nullable=False),
    Column("time_end", _sortable(19)),
    Column("caller_id", String(255), nullable=False, server_default=""),
    Column("source", _sortable(80), nullable=False, server_default=""),
    Column("destination", _sortable(80), nullable=False, server_default=""),
    Column("direction", String(8), nullable=False),
    # Raw Asterisk columns, kept so derived fields can be computed again.
    Column("channel", String(255), nullable=False, server_default=""),
    Column("dstchannel", String(255), nullable=False, server_default=""),
    Column("dcontext", String(80)),
    Column("lastapp", String(80)),
    Column("lastdata", String(255)),
    Column("amaflags", String(20)),
    Column("userfield", String(255)),
    Column("peeraccount", String(80)),
    Column("did", String(80)),
    # API fields (SPEC §6).
    Column("channel_formatted", String(255), nullable=False, server_default=""),
    Column("dstchannel_formatted", String(255), nullable=False, server_default=""),
    Column("customer_id", String(80)),
    Column("user_id", Integer),
    Column("user_fullname", String(200)),
    Column("qname", String(128)),
    Column("code", String(40)),
    Column("call_status", String(20), nullable=False),
    Column("call_status_info", String(255)),
    Column("call_codes", String(255)),
    Column("accounting_code", String(80)),
    Column("accounting_value", String(255)),
    Column("comments", Text),
    Column("monitor_files", Text),
    Column("monitor_urls", Text),
    Column("recording_file", String(512)),
    Column("recording_url", String(1024)),
    Column("transfers", Text),
    Column("project_id", Integer),
    Column("project", String(200)),
    Column("inbound_route_id", Integer),
    Column("inbound_route", String(200)),
    Column("queue_log", Text),
    Column("ivr_log", Text),
    Column("external_id", String(150)),
    Column("external_info", Text),
    Column("agent_details", Text),
    Column("is_recovered", SmallInteger),
    Column("transcription_id", String(80)),
    Column("transcription_text", Text),
    Column("billsec", Integer, nullable=False, server_default="0"),
    Column("duration", Integer, nullable=False, server_default="0"),
    Column("ivr_duration", Integer, nullable=False, server_default="0"),
    Column("hold_time", Integer, nullable=False, server_default="0"),
    Column("ring_time", Integer, nullable=False, server_default="0"),
)

# Where each ingestion source stopped (a file's inode and offset, a table's watermark), as
# JSON. Written in the same transaction as the calls it covers, so a crash loses nothing.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("source", String(255), primary_key=True),
    Column("position", Text, nullable=False),
)

# What queue_log says about each queued call (``callid`` is the caller channel's
# uniqueid): its events as JSON and the fields they give the call's records. Kept apart
# so the fields reach the records whether the CDR or the queue_log line comes first.
queue_calls = Table(
    "queue_calls",
    metadata,
    Column("callid", String(150), primary_key=True),
    Column("events", Text, nullable=False),
    Column("qname", String(128)),
    Column("hold_time", Integer, nullable=False, server_default="0"),
    Column("ring_time", Integer, nullable=False, server_default="0"),
    Column("agent_details", Text),
    Column("queue_log", Text),
    Column("transfers", Text),
    Column("call_codes", String(255)),
)

# What CEL (Channel Event Logging) says of each call (``linkedid``): its events (texts
# joined by \x1e) and the fields they give the call's records (:mod:`cdrapi.store.cel`).
# Kept apart, as ``queue_calls``, so the fields reach the records whether the CDR or the
# CEL comes first.
# ``ivr_uniqueid``: the channel that went through the IVR (its legs get ``ivr_log``);
# ``rings``: JSON, channel name -> seconds it rang (a leg's ``ring_time`` by its
# ``dstchannel``); ``ended``: LINKEDID_END, the moment the call really ended (local time).
cel_calls = Table(
    "cel_calls",
    metadata,
    Column("linkedid", String(150), primary_key=True),
    Column("events", Text, nullable=False),
    Column("ivr_uniqueid", String(150)),
    Column("ivr_log", Text),
    Column("ivr_duration", Integer, nullable=False, server_default="0"),
    Column("transfers", Text),
    Column("monitor_files", Text),
    Column("monitor_urls", Text),
    Column("rings", Text, nullable=False, server_default="{}"),
    Column("ended", _sortable(19)),
)

# Who may sign in to the web call log, and which calls each sees: cdrapi's own accounts,
# not the PBX's ``users``. The scope is JSON (project ids, extensions; both empty: every
# call); ``generation`` rises when the password changes or the account is disabled, ending
# the sessions signed in before. Statements and meaning: :mod:`cdrapi.store.accounts`.
web_accounts = Table(
    "web_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("project_ids", Text, nullable=False, server_default="[]"),
    Column("extensions", Text, nullable=False, server_default="[]"),
    Column("generation", Integer, nullable=False, server_default="0"),
    Column("disabled", SmallInteger, nullable=False, server_default="0"),
    Column("created_at", String(19), nullable=False),
    Column("last_sign_in_at", String(19)),
    # An id is never given again (SQLite would reuse the highest after a removal): a
    # session of a removed account must not become the session of the next one made.
    sqlite_autoincrement=True,
)

# The web's generated secrets (the session signing key), shared by every worker.
web_keys = Table(
    "web_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# The indexes behind the filters (SPEC §4). Kept apart from the table so a bulk load
# into an empty table can build them once at the end.
SECONDARY_INDEXES = (
    Index("ix_calls_time", calls.c.time, calls.c.id),  # (time, id): index-only on PG
    Index("ix_calls_source", calls.c.source),
    Index("ix_calls_destination", calls.c.destination),
    Index("ix_calls_uniqueid", calls.c.uniqueid),
    Index("ix_calls_linkedid", calls.c.linkedid),
    Index("ix_calls_external_id", calls.c.external_id),
    Index("ix_calls_project_id", calls.c.project_id),
    Index("ix_calls_user_id", calls.c.user_id),
    Index("ix_calls_inbound_route_id", calls.c.inbound_route_id),
    Index("ix_calls_direction", calls.c.direction),
    Index("ix_calls_call_status", calls.c.call_status),
)
