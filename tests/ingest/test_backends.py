"""The whole ingestion path on each store backend (SQLite and a real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from cdrapi.ingest import IngestRun, ingest_csv, ingest_queue_log, rederive
from cdrapi.ingest.directory import directory_from
from cdrapi.store.engine import connect
from tests.ingest.conftest import FIXTURES, append, cdr_line, rows


def test_csv_queue_log_and_rederive_on_each_backend(db_url: str, tmp_path: Path) -> None:
    store = connect(db_url)
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1, status="NO ANSWER"), cdr_line(2))
    append(master, cdr_line(3, src="0721999999"))
    first = ingest_csv(store, [master])
    assert (first.stored, first.duplicates) == (3, 0)
    again = ingest_csv(store, [master, FIXTURES / "cdr_csv-21col-Master.csv"],
                       IngestRun(from_start=True))  # fmt: skip
    assert (again.stored, again.duplicates) == (84, 3)
    # callback of the missed call, in a later run: marked recovered in the store
    append(master, cdr_line(4, src="0721000000", minute=30))
    ingest_csv(store, [master])
    assert rows(store, "is_recovered")[0] == (1,)
    queue_log = tmp_path / "queue_log"
    queue_log.write_text(
        "1710000000|1710000000.2|suport|PJSIP/101|CONNECT|4|1710000001.9|3\n"
        "1710000100|1710000000.2|suport|PJSIP/101|COMPLETEAGENT|4|90|1\n"
    )
    assert ingest_queue_log(store, queue_log).updated == 1
    directory = directory_from({"users": [{"extension": "101", "fullname": "Maria"}]})
    assert rederive(store, IngestRun(directory=directory)).updated == 88
    second = rows(store, "uniqueid", "qname", "hold_time", "code", "user_fullname", "id")[1]
    assert second[:5] == ("1710000000.2", "suport", 4, "queue", "Maria")
    ids = [r[0] for r in rows(store, "id")]
    assert ids == sorted(ids) and len(set(ids)) == 88
    store.dispose()


def test_several_importers_write_to_one_sqlite_store_at_once(tmp_path: Path) -> None:
    import threading

    url = f"sqlite:///{tmp_path / 'store.db'}"
    connect(url).dispose()
    files = []
    for part in range(3):
        path = tmp_path / f"Master-{part}.csv"
        append(path, *(cdr_line(part * 100_000 + n) for n in range(3000)))
        files.append(path)
    errors: list[BaseException] = []

    def work(path: Path) -> None:
        try:
            engine = connect(url)
            for start in range(0, 3000, 500):  # many small imports: many transactions
                lines = path.read_text().splitlines(keepends=True)[start : start + 500]
                piece = path.with_suffix(f".{start}.csv")
                piece.write_text("".join(lines))
                ingest_csv(engine, [piece])
        except BaseException as exc:
            import traceback

            traceback.print_exc()
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    ids = [r[0] for r in rows(connect(url), "id")]
    assert ids == list(range(1, 9001))
