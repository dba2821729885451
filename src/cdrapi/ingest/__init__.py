"""Asterisk ingestion: the PBX's own call records into the store, every API field filled.

One module per source, the rest named by what they hold::

    csvfile.py     cdr_csv / cdr_custom / header CSV files into the store
    layouts.py     which layout a CSV line has (detection, --columns), its fields decoded
    sqltable.py    the SQL ``cdr`` table on MariaDB/MySQL, PostgreSQL, SQLite
    queue_log.py   a queue_log file or a CSV export of the table
    queue_log_table.py  a queue_log table (FreePBX/PBXware queuelog, realtime)
    queue_events.py  the events of queued calls, as each queue_log source reads them
    queue_fields.py  queue events -> the queue fields of the calls, merged into the store
    cel_file.py    cel_custom CSV files (Master.csv) of CEL events
    cel_table.py   the CEL ``cel`` table (cel_odbc, cel_pgsql, cel_sqlite3; FreePBX)
    cel_events.py  CEL events as every CEL source reads them
    cel_calls.py   a batch's CEL events by call, stored and summarized once per call
    cel_fields.py  a call's events -> IVR path, transfers, MixMonitor files, rings, end
    sqlsource.py   a SQL table polled into the store
    watermark.py   where a table source stopped, in the column's own terms
    directory.py   projects, users, trunks, inbound routes, queues (TOML)
    derive.py      raw CDR -> calls row: direction, code, user, project, route, status...
    recovery.py    is_recovered: missed inbound calls answered later
    recordings.py  finding a call's recording file
    cdr.py         the raw CDR every source produces
    files.py       line files read once or followed, batches committed
    follow.py      tailing across rotation and truncation
    logfile.py     a log file open for reading, plain or compressed (gz, bz2, xz)
    rotation.py    where a file went after logrotate (renamed, compressed, copied)
    checkpoint.py  where a file source stopped
    batch.py       a batch and its one-transaction commit (through the store's Writer)
    summary.py     what a run did, its summary line and exit status
    rejects.py     the reject file
    run.py         one ingestion run: what it is told (settings, directory, reporting)
    rederive.py    deriving stored calls again
    errors.py      the exception tree

Each import is resumable and idempotent: rows are keyed (uniqueid and sequence, or the
whole line) so the same CDR stays one record, and each batch commits with its checkpoint.
A run makes one :class:`cdrapi.store.writer.Writer` (:meth:`IngestRun.prepare`) and hands
it plain values; no module here builds SQL on the store's tables
(tests/test_ingest_boundary.py), and no source imports another.
"""

from cdrapi.ingest.cel_file import ingest_cel
from cdrapi.ingest.cel_table import ingest_cel_table
from cdrapi.ingest.csvfile import ingest_csv
from cdrapi.ingest.directory import Directory, load_directory
from cdrapi.ingest.errors import DirectoryError, IngestError, LayoutError, Reject, SourceError
from cdrapi.ingest.queue_log import ingest_queue_log
from cdrapi.ingest.queue_log_table import ingest_queue_log_table
from cdrapi.ingest.rederive import rederive
from cdrapi.ingest.run import IngestRun
from cdrapi.ingest.sqltable import ingest_db

__all__ = [
    "Directory",
    "DirectoryError",
    "IngestError",
    "IngestRun",
    "LayoutError",
    "Reject",
    "SourceError",
    "ingest_cel",
    "ingest_cel_table",
    "ingest_csv",
    "ingest_db",
    "ingest_queue_log",
    "ingest_queue_log_table",
    "load_directory",
    "rederive",
]
