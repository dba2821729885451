"""The demo's records derived as real ones are: the same code as ``cdrapi ingest``.

A call's raw CDRs (:data:`cdrapi.ingest.cdr.CDR_FIELDS` tuples) go through
:meth:`cdrapi.ingest.derive.Deriver.row` with the demo's directory (as ingestion reads it
from the store); its queue_log events through
:func:`cdrapi.ingest.queue_fields.summarize`, per caller's uniqueid; its CEL events
through :func:`cdrapi.ingest.cel_fields.summarize`, per call; and a day's rows through
:class:`cdrapi.ingest.recovery.Recovery`, as a batch of ``ingest csv``. The fields are
merged as the store merges them when it copies queue_log and CEL onto calls
(:func:`cdrapi.store.queue_calls.copy_queue_fields`, then
:func:`cdrapi.store.cel.copy_cel_fields`: CEL wins; a field an event log says nothing of
keeps the CDR's value). What no PBX log holds (CRM ids, comments, costs,
transcriptions) is added by :mod:`cdrapi.demo.records` after the derived fields.

Recordings: the demo's PBX keeps every file its CDRs name (:class:`DemoRecordings`), so
a recorded call's ``recording_file`` is its CDR's ``recordingfile``, as the recordings
index gives a file it finds under ``recordings_dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from cdrapi.demo import directory
from cdrapi.demo.shape import PUBLIC_URL
from cdrapi.ingest.cel_fields import People, Recordings
from cdrapi.ingest.cel_fields import summarize as cel_summary
from cdrapi.ingest.derive import Deriver
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.queue_fields import summarize as queue_summary
from cdrapi.ingest.recordings import RecordingIndex
from cdrapi.ingest.row import ROW_FIELDS

__all__ = ["EXTRA_COLUMNS", "ZONE", "DemoRecordings", "Derivation"]

ZONE = ZoneInfo("Europe/Bucharest")

#: The columns after the derived row's (:data:`cdrapi.ingest.row.ROW_FIELDS`): those the
#: queue_log and CEL give, then those no PBX log holds, in the order of a record's tuple.
EXTRA_COLUMNS = (
    "agent_details", "queue_log", "hold_time", "ivr_log", "ivr_duration", "transfers",
    "monitor_files", "monitor_urls",
    "customer_id", "accounting_value", "comments", "external_id", "external_info",
    "transcription_id", "transcription_text",
)  # fmt: skip

_AT = {name: i for i, name in enumerate((*ROW_FIELDS, *EXTRA_COLUMNS))}
_UID, _DSTCHANNEL, _QNAME, _CODE = _AT["uniqueid"], _AT["dstchannel"], _AT["qname"], _AT["code"]
_CODES, _RING, _DETAILS, _QLOG = (
    _AT["call_codes"],
    _AT["ring_time"],
    _AT["agent_details"],
    _AT["queue_log"],
)
_HOLD, _IVR, _IVR_S, _XFERS = (
    _AT["hold_time"],
    _AT["ivr_log"],
    _AT["ivr_duration"],
    _AT["transfers"],
)
_FILES, _URLS = _AT["monitor_files"], _AT["monitor_urls"]


class DemoRecordings(RecordingIndex):
    """The recordings of the demo's PBX: every file a CDR names is there."""

    def __init__(self) -> None:
        super().__init__("/nonexistent/demo-recordings")

    def find(self, uniqueid: str, recordingfile: str, start: str) -> str | None:
        return recordingfile or None


class Derivation:
    """Derives the demo's calls with ingestion's code (see the module's docstring)."""

    def __init__(self) -> None:
        self.directory = Directory.from_tables(directory.rows())
        self.deriver = Deriver(self.directory, recordings=DemoRecordings(), public_url=PUBLIC_URL)
        self.row = self.deriver.row
        self.people = People(self.directory)
        self.recordings = Recordings(None, PUBLIC_URL)

    def complete(
        self,
        rows: list[list[Any]],
        linkedid: str,
        cel: Sequence[Any],
        queue: dict[str, list[Any]],
    ) -> None:
        """Give a call's ``rows`` (derived rows with :data:`EXTRA_COLUMNS`' slots, as
        lists) what its queue_log events (by callid) and CEL events (time order) say."""
        directory = self.directory
        if queue:
            for row in rows:
                events = queue.get(row[_UID])
                if not events:
                    continue
                q = queue_summary(events, directory)
                row[_QNAME], row[_HOLD], row[_CODE] = q["qname"], q["hold_time"], "queue"
                if q["ring_time"] > 0:
                    row[_RING] = q["ring_time"]
                row[_DETAILS], row[_QLOG], row[_XFERS] = (
                    q["agent_details"], q["queue_log"], q["transfers"],
                )  # fmt: skip
                if q["call_codes"] is not None:
                    row[_CODES] = q["call_codes"]
        if not cel:
            return
        found = cel_summary(linkedid, cel, self.people, self.recordings, ZONE)
        ivr, transfers, files, rings = (
            found["ivr_log"], found["transfers"], found["monitor_files"], found["rings"],
        )  # fmt: skip
        for row in rows:
            if ivr and row[_UID] == found["ivr_uniqueid"]:
                row[_IVR], row[_IVR_S] = ivr, found["ivr_duration"]
            if transfers:
                row[_XFERS] = transfers
            if files:
                row[_FILES], row[_URLS] = files, found["monitor_urls"]
            ring = rings.get(row[_DSTCHANNEL]) if row[_DSTCHANNEL] else None
            if ring is not None:
                row[_RING] = ring
