"""One ingestion run: what it is told (the directory, the settings it derives with, the
reject file, reporting) and what it makes from that (its writer, deriver, recovery, and
the CRM fields' map of ``[fields]``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from cdrapi.ingest.batch import writer_for
from cdrapi.ingest.crm_fields import FieldMap, MappedDeriver
from cdrapi.ingest.derive import Deriver
from cdrapi.ingest.directory import Directory
from cdrapi.ingest.errors import Reject
from cdrapi.ingest.recordings import RecordingIndex
from cdrapi.ingest.recovery import Recovery
from cdrapi.ingest.rejects import RejectFile
from cdrapi.ingest.summary import Summary
from cdrapi.settings import Settings
from cdrapi.store.writer import Writer

__all__ = ["IngestRun"]


@dataclass
class IngestRun:
    """How to ingest: the directory, settings, reject file and reporting.

    ``directory`` (when given) replaces the store's directory tables at the start of the
    run. ``report`` is called with each rejected line, ``progress`` after each batch.
    """

    settings: Settings = field(default_factory=lambda: Settings.model_validate({}))
    directory: Directory | None = None
    rejects: str | Path | None = None
    report: Callable[[Reject], None] | None = None
    progress: Callable[[Summary], None] | None = None
    from_start: bool = False
    stop: threading.Event | None = None

    def prepare(self, engine: Engine) -> Writer:
        """The run's writer of the store at ``engine``, once the indexes a crashed bulk
        load left missing are restored and the directory stored (or, without one, the
        stored one taken)."""
        store = writer_for(engine)
        store.ensure_indexes()
        if self.directory is not None:
            store.replace_directory(self.directory.tables())
        else:
            self.directory = Directory.from_tables(store.read_directory())
        return store

    def reject_file(self) -> RejectFile:
        """The run's reject file (lines already in it not repeated with ``from_start``)."""
        return RejectFile(self.rejects, self.report, again=self.from_start)

    def zone(self) -> ZoneInfo:
        """The PBX's time zone (the ``timezone`` setting)."""
        name = self.settings.timezone
        return ZoneInfo(name) if name != "local" else _local_zone()

    def fields(self) -> FieldMap | None:
        """The CRM fields' map (the ``[fields]`` table), or ``None`` when none is set."""
        return FieldMap.of(self.settings.crm_fields)

    def deriver(self, gmt: bool = False, *, crm: bool = True) -> Deriver:
        """The run's deriver; with ``[fields]`` (and ``crm``), one whose rows end with
        the CRM fields (:class:`~cdrapi.ingest.crm_fields.MappedDeriver`)."""
        zone = self.zone() if gmt else None
        recordings = self.settings.recordings_dir
        options: dict[str, Any] = {
            "gmt_to": zone,
            "recordings": RecordingIndex(recordings) if recordings else None,
            "public_url": self.settings.public_url,
        }
        fields = self.fields() if crm else None
        if fields is not None:
            return MappedDeriver(fields, self.directory, **options)
        return Deriver(self.directory, **options)

    def recovery(self, in_store: bool = True) -> Recovery:
        """``is_recovered`` tracking; ``in_store``: also for missed calls stored earlier."""
        return Recovery(self.settings.recovered_window, in_store)


def _local_zone() -> ZoneInfo:
    try:
        with open("/etc/timezone") as handle:
            return ZoneInfo(handle.read().strip())
    except (OSError, ValueError):
        pass
    try:
        link = Path("/etc/localtime").resolve()
        return ZoneInfo(str(link).split("zoneinfo/", 1)[1])
    except (OSError, IndexError, ValueError):
        return ZoneInfo("UTC")
