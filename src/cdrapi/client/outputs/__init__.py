"""Where ``pull`` writes: chosen by the target's name.

=============================  ==============================================
target                         output
=============================  ==============================================
``*.jsonl``, ``*.ndjson``      JSON Lines, records as sent (:mod:`.jsonl`)
``*.csv``                      CSV, 43-column header (:mod:`.csvfile`)
``*.parquet``                  Parquet, typed columns (:mod:`.parquet`)
``sqlite:///…``,               a table upserted by id (:mod:`.database`)
``postgresql://…``
=============================  ==============================================
"""

from __future__ import annotations

from pathlib import Path

from cdrapi.client.outputs.base import Output, publish_file

__all__ = ["Output", "is_database_url", "open_output", "publish_file"]

_DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")


def is_database_url(target: str) -> bool:
    """Whether ``target`` names a database (``sqlite:///...``, ``postgresql://...``)."""
    scheme, sep, _ = target.partition("://")
    return bool(sep) and scheme.split("+")[0] in _DATABASE_SCHEMES


def open_output(target: str, *, table: str = "calls") -> Output:
    """The output for ``target``; ``ValueError`` when its kind is unknown.

    Each kind's module is imported when used (SQLAlchemy, pyarrow are big)."""
    if is_database_url(target):
        from cdrapi.client.outputs.database import DatabaseOutput

        return DatabaseOutput(target, table=table)
    suffix = Path(target).suffix.lower()
    if suffix == ".parquet":
        from cdrapi.client.outputs.parquet import ParquetOutput

        return ParquetOutput(target)
    if suffix in (".jsonl", ".ndjson"):
        from cdrapi.client.outputs.jsonl import JsonlOutput

        return JsonlOutput(target)
    if suffix == ".csv":
        from cdrapi.client.outputs.csvfile import CsvOutput

        return CsvOutput(target)
    raise ValueError(
        f"cannot tell the format of {target!r}: name a .jsonl, .csv or .parquet file, "
        "or a sqlite:/// or postgresql:// database"
    )
