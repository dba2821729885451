"""``cdrapi demo``: fill a database with synthetic PBX traffic.

With ``--recordings-dir``, the recordings of the last ``--audio-days`` days also get
playable audio there (:mod:`cdrapi.demo.audio`): serve with the same ``recordings_dir``
and the call view's player plays them. The directory is never taken from the settings:
a demo must not write into a real PBX's recordings.

With ``--write-files DIR``, the demo's PBX files are written there too, as Asterisk
writes them (:mod:`cdrapi.demo.files`: ``Master.csv``, ``cel.csv``, ``queue_log`` and
the ``cdrapi.toml`` of the demo's directory), for trying ``cdrapi ingest`` on them.
"""

from __future__ import annotations

import datetime as dt
import shlex
import time
from pathlib import Path

import click

from cdrapi.cli.common import clean_errors, config_option, db_option
from cdrapi.cli.settings import STORE_ERRORS, settings
from cdrapi.store.engine import connect

__all__ = ["demo"]


@click.command()
@db_option
@click.option("--calls", type=click.IntRange(min=0), default=100_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last day of the generated traffic (default: today).",
)
@click.option(
    "--recordings-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write playable audio (8 kHz WAV) here for the recordings of the last days.",
)
@click.option(
    "--audio-days",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Days, up to the last, whose recordings get audio (with --recordings-dir).",
)
@click.option(
    "--write-files",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the PBX's files of these calls here, as Asterisk writes them "
    "(Master.csv, cel.csv, queue_log, and cdrapi.toml with the demo's directory).",
)
@config_option
def demo(
    db: str | None,
    calls: int,
    days: int,
    seed: int,
    end: dt.datetime | None,
    recordings_dir: Path | None,
    audio_days: int,
    write_files: Path | None,
    config: str | None,
) -> None:
    """Fill a database with realistic synthetic PBX traffic (deterministic for a seed)."""
    from cdrapi.demo import generate
    from cdrapi.demo.files import FILES, PbxFiles

    chosen = settings(config, db=db)
    started = time.perf_counter()
    with clean_errors(*STORE_ERRORS, OSError):
        pbx = PbxFiles(write_files) if write_files is not None else None
        engine = connect(chosen.db)
        summary = generate(
            engine, calls=calls, days=days, seed=seed, end=end.date() if end else None, pbx=pbx
        )
    elapsed = time.perf_counter() - started
    rate = summary.calls / elapsed if elapsed else 0.0
    click.echo(
        f"Wrote {summary.calls:,} calls ({summary.start} .. {summary.end}) to "
        f"{chosen.db} in {elapsed:.1f}s ({rate:,.0f} calls/s)"
    )
    if write_files is not None:
        where = {what: shlex.quote(str(write_files / name)) for what, name in FILES.items()}
        click.echo(
            f"Wrote the PBX's files of those calls under {write_files}: "
            f"{', '.join(FILES.values())}. Try them on a new store:\n"
            f"  cdrapi ingest csv {where['cdr']} --config {where['config']} --db sqlite:///try.db\n"
            f"  cdrapi ingest queue-log {where['queue_log']} --config {where['config']} "
            "--db sqlite:///try.db\n"
            f"  cdrapi ingest cel {where['cel']} --config {where['config']} --db sqlite:///try.db"
        )
    if recordings_dir is not None:
        from cdrapi.demo.audio import write_recordings

        since = max(summary.start, summary.end - dt.timedelta(days=audio_days - 1))
        started = time.perf_counter()
        with clean_errors(*STORE_ERRORS, OSError, ValueError):
            audio = write_recordings(engine, recordings_dir, since=since)
        click.echo(
            f"Wrote audio for {audio.files:,} recordings ({since} .. {summary.end}; "
            f"{audio.clips} clips, {audio.bytes / 1e6:.1f} MB) under {recordings_dir} "
            f"in {time.perf_counter() - started:.1f}s"
        )
