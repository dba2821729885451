"""A small, deliberately awkward call set for API tests, and an independent Python oracle
of the filter semantics (SPEC §4) to check the SQL against."""

from __future__ import annotations

import random
import re
from typing import Any

from sqlalchemy import Engine

from cdrapi.store.engine import bump_version
from cdrapi.store.schema import calls

NUMBERS = [
    "0721123456",
    "0721999000",
    "0312285000",
    "0372100200",
    "0040721123456",
    "100",
    "101",
    "205",
    "anonymous",
    "07_2%1",
    "0721'; DROP TABLE calls;--",
    "+40723000111",
]
STATUSES = ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"]
DIRECTIONS = ["IN", "OUT", "INTERNAL"]


def sample_rows(count: int = 260, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        day = 1 + n % 31
        second_of_day = rng.choice(
            [
                0,
                59,
                3600 * 6,
                3600 * 10 + 1800,
                3600 * 17 + 3599,
                3600 * 22 + 5,
                86399,
                rng.randrange(86400),
            ]
        )
        hh, rest = divmod(second_of_day, 3600)
        start = f"2024-01-{day:02d} {hh:02d}:{rest // 60:02d}:{rest % 60:02d}"
        billsec = rng.choice([0, 1, 59, 60, 61, 3600, 90000])
        recorded = rng.random() < 0.5
        rows.append(
            {
                "uniqueid": f"1704067200.{n}",
                "linkedid": f"1704067200.{n - n % 3}",
                "time": start,
                "time_end": start,
                "caller_id": f'"Caller {n}" <{NUMBERS[n % len(NUMBERS)]}>',
                "source": rng.choice(NUMBERS),
                "destination": rng.choice(NUMBERS),
                "direction": rng.choice(DIRECTIONS),
                "call_status": rng.choice(STATUSES),
                "project_id": rng.choice([None, 1, 2]),
                "user_id": rng.choice([None, 10, 11, 12]),
                "inbound_route_id": rng.choice([None, 5, 6]),
                "external_id": rng.choice([None, "", "crm-1", "crm-2"]),
                "transcription_id": rng.choice([None, "", "tr-1"]),
                "monitor_files": rng.choice([None, "", "m.wav"]),
                "recording_file": "2024/01/01/rec.wav" if recorded else rng.choice([None, ""]),
                "billsec": billsec,
                "duration": billsec + rng.randrange(30),
                "is_recovered": rng.choice([None, 0, 1]),
            }
        )
    return rows


def load(engine: Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert rows; return them with their ids, in id order."""
    with engine.begin() as conn:
        first = conn.execute(calls.insert().returning(calls.c.id), rows[:1]).scalar_one()
        if len(rows) > 1:
            conn.execute(calls.insert(), rows[1:])
        bump_version(conn)
    return [{**row, "id": first + i} for i, row in enumerate(rows)]


def _like(pattern: str, text: str) -> bool:
    if "*" in pattern or "%" in pattern:
        regex = ".*".join(re.escape(piece) for piece in re.split(r"[*%]", pattern))
        return re.fullmatch(regex, text, re.IGNORECASE | re.DOTALL) is not None
    return pattern.lower() in text.lower()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _widen(value: str, full: str) -> str:
    return value + full[len(value) :]


def oracle(row: dict[str, Any], filters: dict[str, Any]) -> bool:
    """Whether ``row`` matches ``filters`` (JSON-style values), written independently."""
    for name, value in filters.items():
        if value is None or value == "":
            continue
        if name == "date_between":
            lo, hi = value
            if lo and row["time"] < _widen(lo, "0000-00-00 00:00:00"):
                return False
            if hi and row["time"] > _widen(hi, "9999-99-99 23:59:59"):
                return False
        elif name == "hour_between":
            lo, hi = _widen(value[0], "00:00:00"), _widen(value[1], "99:59:59")
            clock = row["time"][11:]
            inside = lo <= clock <= hi if lo <= hi else (clock >= lo or clock <= hi)
            if not inside:
                return False
        elif name in ("project_id", "user_id", "inbound_route_id"):
            if row[name] not in {int(v) for v in _as_list(value)}:
                return False
        elif name in ("direction", "call_status"):
            wanted = {str(v).upper().replace("_", " ") for v in _as_list(value)}
            if row[name] not in wanted:
                return False
        elif name == "telephone_like":
            if not (_like(value, row["source"]) or _like(value, row["destination"])):
                return False
        elif name == "telephone":
            if value not in (row["source"], row["destination"]):
                return False
        elif name in ("source", "destination"):
            if not _like(value, row[name]):
                return False
        elif name == "from_id":
            if row["id"] < int(value):
                return False
        elif name in ("uniqueid", "linkedid", "external_id"):
            if row[name] not in {str(v) for v in _as_list(value)}:
                return False
        elif name.startswith("has_"):
            column = {
                "has_transcription": "transcription_id",
                "has_monitor_file": "monitor_files",
                "has_recording_file": "recording_file",
            }[name]
            wanted = str(value).lower() in ("1", "true", "yes")
            if bool(row[column]) != wanted:
                return False
        else:
            raise AssertionError(f"oracle does not know {name}")
    return True
