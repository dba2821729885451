"""A missed call is a call, not a leg (issue 8, item 8): ``is_recovered`` and the codes of
the legs of a call answered elsewhere (:mod:`cdrapi.ingest.recovery`).

The fixtures in ``tests/fixtures/missed`` are cdr_csv lines (21 columns, Asterisk 13+):
ring groups and queues write one leg per phone rung, all with the caller's linkedid.
``part1.csv`` and ``part2.csv`` hold the legs written before and after a cut:

- A: a ring group answered by its second leg; the first leg before the cut.
- B: a ring group nobody answered; its caller is answered at 11:00 (D): recovered.
- C: a ring group answered by its first leg, stored before the cut; the others after.
- E: a queue both agents let ring, the caller hung up in it (the caller's own leg is
  ANSWERED by the PBX, with no destination channel): missed.
- F: a ring group nobody answered, then a voicemail left (ANSWERED by VoiceMail, no
  destination channel, 20 s later): missed, and not recovered by its own voicemail leg.
- Q: a queue call agent 101 let ring and 102 answered (after the cut).

Each way of reading them (one batch, two batches, two runs on SQLite and PostgreSQL,
``--follow``, the big-file producer process) ends with the same :data:`EXPECTED`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine

from cdrapi.ingest import IngestRun, ingest_csv, ingest_queue_log, load_directory
from cdrapi.ingest.files import CHUNK
from cdrapi.settings import Settings
from cdrapi.store.engine import connect
from tests.conftest import app_client
from tests.ingest.conftest import TOKEN, api, append, rows, wait_for

MISSED = Path(__file__).parents[1] / "fixtures" / "missed"
PART1, PART2 = (MISSED / "part1.csv").read_text(), (MISSED / "part2.csv").read_text()
DIRECTORY = load_directory(MISSED / "cdrapi.toml")

A, B, C, E, F, Q, D = (
    "1710486000.100", "1710486600.110", "1710487200.120", "1710487500.130", "1710487800.140",
    "1710488100.150", "1710493200.160",
)  # fmt: skip
ELSEWHERE = "in answered elsewhere"
# (linkedid, sequence) -> (is_recovered, call_codes)
EXPECTED = {
    (A, 100): (None, ELSEWHERE), (A, 101): (None, "in answered"), (A, 102): (None, ELSEWHERE),
    (B, 110): (1, "in no answer"), (B, 111): (1, "in busy"), (B, 112): (1, "in no answer"),
    (C, 120): (None, "in answered"), (C, 121): (None, ELSEWHERE), (C, 122): (None, ELSEWHERE),
    (E, 130): (0, "queue no answer"), (E, 131): (0, "queue no answer"),
    (E, 133): (None, "queue answered"),
    (F, 140): (0, "in no answer"), (F, 141): (0, "in no answer"), (F, 143): (None, "in answered"),
    (Q, 150): (None, "queue answered elsewhere"), (Q, 151): (None, "queue answered"),
    (D, 160): (None, "in answered"),
}  # fmt: skip


def outcome(engine: Engine) -> dict[tuple[str, int], tuple[int | None, str]]:
    """(linkedid, sequence) -> (is_recovered, call_codes) of the fixtures' calls."""
    found = rows(engine, "linkedid", "sequence", "is_recovered", "call_codes")
    return {(lid, seq): (rec, codes) for lid, seq, rec, codes in found if lid in EXPECTED_IDS}


EXPECTED_IDS = {lid for lid, _ in EXPECTED}


def filler(size: int) -> str:
    """Answered outbound calls (numbers no fixture call uses) of at least ``size`` bytes."""
    lines, total, n = [], 0, 0
    while total < size:
        uid = f"1710480000.{n}"
        line = (
            f'"","104","07299{n:05d}","from-internal","""Agent 104"" <104>","PJSIP/104-{n:08x}",'
            f'"PJSIP/orange-{n + 1:08x}","Dial","PJSIP/07299{n:05d}@orange,60",'
            f'"2024-03-15 08:00:00","2024-03-15 08:00:05","2024-03-15 08:01:05",65,60,'
            f'"ANSWERED","DOCUMENTATION","{uid}","","","{uid}",{n}\n'
        )
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines)


def counting(batches: list[int]) -> IngestRun:
    """A run that counts the batches it commits."""
    return IngestRun(directory=DIRECTORY, progress=lambda _summary: batches.append(1))


def test_in_one_batch(store: Engine, tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    append(master, PART1, PART2)
    batches: list[int] = []
    assert ingest_csv(store, [master], counting(batches)).stored == 18
    assert len(batches) == 1
    assert outcome(store) == EXPECTED


def test_legs_in_different_batches(db_url: str, tmp_path: Path) -> None:
    """The cut a whole first batch away: each call's legs in two batches (the earlier
    batch's rows updated by key, on SQLite and on PostgreSQL)."""
    store = connect(db_url)
    master = tmp_path / "Master.csv"
    append(master, PART1, filler(CHUNK // 16 + 1), PART2)
    batches: list[int] = []
    ingest_csv(store, [master], counting(batches))
    assert len(batches) >= 2
    assert outcome(store) == EXPECTED
    store.dispose()


def test_legs_across_two_runs(db_url: str, tmp_path: Path) -> None:
    """The second run finds the other legs of its calls stored by the first, on SQLite
    and on PostgreSQL: A's answer clears its stored leg, C's stored answer clears the new
    legs, D recovers B's stored legs."""
    store = connect(db_url)
    master = tmp_path / "Master.csv"
    append(master, PART1)
    ingest_csv(store, [master], IngestRun(directory=DIRECTORY))
    first = outcome(store)
    assert first[(A, 100)] == (0, "in no answer") and first[(B, 110)] == (0, "in no answer")
    append(master, PART2)
    assert ingest_csv(store, [master]).stored == 7
    assert outcome(store) == EXPECTED
    store.dispose()


def test_legs_across_runs_in_a_big_file(store: Engine, tmp_path: Path) -> None:
    """A file over two chunks is parsed in a producer process, the recovery state with
    it: the legs of a batch before come back to the writer as keys, and a later run
    looks the rest up in the store."""
    master = tmp_path / "Master.csv"
    append(master, PART1, filler(2 * CHUNK + 1), PART2)
    batches: list[int] = []
    ingest_csv(store, [master], counting(batches))
    assert len(batches) >= 3
    assert outcome(store) == EXPECTED


def test_follow_across_polls(store: Engine, tmp_path: Path) -> None:
    """``--follow``: the legs arrive in two polls; the second is stored correct at once."""
    master = tmp_path / "Master.csv"
    append(master, PART1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ingest_csv(store, [master], IngestRun(directory=DIRECTORY, stop=stop), follow=True)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(outcome(store)) == 11, timeout=10)
        append(master, PART2)
        wait_for(lambda: outcome(store) == EXPECTED, timeout=10)
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors


def test_queue_log_abandoned_calls_stay_missed(store: Engine, tmp_path: Path) -> None:
    """queue_log's word on a call wins over the legs' codes: E was abandoned (a missed
    call: 0), Q was answered by 102 (101's leg is not missed), whichever comes first."""
    master = tmp_path / "Master.csv"
    append(master, PART1, PART2)
    ingest_csv(store, [master], IngestRun(directory=DIRECTORY))
    ingest_queue_log(store, MISSED / "queue_log")
    abandoned = {**EXPECTED}
    for seq in (130, 131, 133):
        abandoned[(E, seq)] = (abandoned[(E, seq)][0], "queue abandoned")
    assert outcome(store) == abandoned
    other = connect(f"sqlite:///{tmp_path / 'other.db'}")
    ingest_queue_log(other, MISSED / "queue_log")
    ingest_csv(other, [master], IngestRun(directory=DIRECTORY))
    assert outcome(other) == abandoned
    other.dispose()


def test_through_the_api(tmp_path: Path) -> None:
    settings = Settings(db=f"sqlite:///{tmp_path / 'store.db'}", api_token=TOKEN)
    engine = connect(settings.db)
    master = tmp_path / "Master.csv"
    append(master, PART1)
    ingest_csv(engine, [master], IngestRun(directory=DIRECTORY))
    append(master, PART2)
    ingest_csv(engine, [master])
    with app_client(settings) as client:
        records = api(client, linkedid=[A, B, F])
    got = {(r["linkedid"], r["call_status"], r["is_recovered"]) for r in records}
    assert len(records) == 9
    assert got == {
        (A, "NO ANSWER", None), (A, "ANSWERED", None),
        (B, "NO ANSWER", "1"), (B, "BUSY", "1"),
        (F, "NO ANSWER", "0"), (F, "ANSWERED", None),
    }  # fmt: skip
    engine.dispose()
