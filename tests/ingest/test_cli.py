"""``cdrapi ingest ...`` as a user runs it: summaries, rejects, clean one-line errors."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import create_engine, text

from cdrapi.cli.ingest import ingest
from cdrapi.store.engine import connect
from tests.ingest.conftest import FIXTURES, append, cdr_line, rows

CONFIG = FIXTURES / "cdrapi.toml"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(ingest, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_csv_command_summary_and_rejects(tmp_path: Path, monkeypatch: object) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), "garbage,line\n", cdr_line(2))
    rejects = tmp_path / "rejects.txt"
    code, out = run("csv", "--db", db, "--rejects", str(rejects), "--config", str(CONFIG),
                    "--max-rejects", "10%", str(master),
                    str(FIXTURES / "cdr_custom-Master.csv"))  # fmt: skip
    assert code == 0, out
    assert f"rejected {master}:2: not an Asterisk CDR line: 2 columns" in out
    assert "lines: 16 calls stored, 0 already there, 1 rejected" in out, out
    assert f"1 rejected lines are in {rejects}" in out
    assert "16 calls stored" in out.strip().splitlines()[-1]  # the summary ends the run
    assert rejects.read_text() == "garbage,line\n"
    engine = connect(db)
    assert rows(engine, "user_fullname")[0] == ("Maria Ionescu",)  # directory from --config
    code, out = run("csv", "--db", db, str(master))
    assert "0 lines: 0 calls stored" in out  # resumed: nothing new
    code, out = run("csv", "--db", db, "--from-start", "--rejects", str(rejects), str(master))
    assert "3 lines: 0 calls stored, 2 already there, 1 rejected" in out


def test_db_queue_log_and_rederive_commands(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    pbx_url = f"sqlite:///{tmp_path / 'asterisk.db'}"
    with create_engine(pbx_url).begin() as conn:
        conn.execute(text("CREATE TABLE cdr (calldate TEXT, src TEXT, dst TEXT, channel TEXT, "
                          "dstchannel TEXT, duration INT, billsec INT, disposition TEXT, "
                          "uniqueid TEXT, sequence INT)"))  # fmt: skip
        conn.execute(text("INSERT INTO cdr VALUES ('2024-03-14 10:00:10', '0721555001', "
                          "'0312285000', 'PJSIP/orange-sip-00000001', 'PJSIP/102-00000002', "
                          "40, 30, 'ANSWERED', '1710403210.700', 1)"))  # fmt: skip
    code, out = run("db", "--db", db, pbx_url)
    assert code == 0 and "1 calls stored" in out, out
    code, out = run("queue-log", "--db", db, "--rejects", str(tmp_path / "r.txt"),
                    "--max-rejects", "10%", str(FIXTURES / "queue_log"))  # fmt: skip
    assert code == 0 and "1 calls updated" in out, out
    code, out = run("rederive", "--db", db, "--config", str(CONFIG))
    assert code == 0 and "Derived 1 calls again" in out
    engine = connect(db)
    assert rows(engine, "qname", "user_fullname", "direction", "project") == [
        ("suport", "Andrei Pop", "IN", "Suport Clienți")  # route's project wins
    ]


def test_errors_are_one_clean_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    code, out = run("csv", "--db", db, str(tmp_path / "missing.csv"))
    assert (
        code == 1 and out.strip() == f"Error: cannot read {tmp_path / 'missing.csv'}: no such file"
    )
    code, out = run("db", "--db", db, "mysql://root:pw@127.0.0.1:1/asteriskcdrdb")
    assert code == 1 and "Error: cannot read table 'cdr' of mysql://root:***@" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[[users]]\nfullname = "X"\n')
    code, out = run("csv", "--db", db, "--config", str(bad), str(FIXTURES / "queue_log"))
    assert code == 1 and "users entry 1: missing extension or channel" in out
    code, out = run("csv", "--db", db, "--columns", "src,bogus", str(FIXTURES / "queue_log"))
    assert code == 1 and "--columns: unknown field(s) bogus" in out
    code, out = run("db", "--db", db, "--lookback", "soon", "sqlite:///x.db")
    assert code == 2 and "expected a duration" in out


def test_exit_status_when_every_line_is_rejected(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(f"junk,{n}\n" for n in range(30)))
    rejects = str(tmp_path / "r.txt")
    code, out = run("csv", "--db", db, "--rejects", rejects, str(bad))
    assert code == 1, out
    assert out.count("\nrejected ") + out.startswith("rejected ") == 20  # the first 20 shown
    assert "... and 10 more rejected" in out
    assert "30 lines: 0 calls stored, 0 already there, 30 rejected" in out
    assert out.strip().endswith("Error: none of the 30 lines could be stored")


def test_exit_status_when_too_many_are_rejected(tmp_path: Path) -> None:
    """1 line in 20 rejected (5%) is exit 1 by default, 0 with ``--max-rejects 5%``; a
    ``--max-rejects`` that is no share is a usage error (2)."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    rejects = str(tmp_path / "r.txt")
    mixed = tmp_path / "Master.csv"
    append(mixed, *(cdr_line(n) for n in range(1, 20)), "junk,line\n")
    code, out = run("csv", "--db", db, "--rejects", rejects, str(mixed))
    assert code == 1 and "Error: 5.0% of the lines were rejected" in out, out
    code, out = run("csv", "--db", db, "--rejects", rejects, "--from-start", "--max-rejects", "5%",
                    str(mixed))  # fmt: skip
    assert code == 0, out
    code, out = run("csv", "--db", db, "--rejects", rejects, "--max-rejects", "lots", str(mixed))
    assert code == 2 and "expected a share of the lines" in out


def test_the_summary_says_what_was_left_for_the_next_run(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    master = tmp_path / "Master.csv"
    append(master, cdr_line(1), cdr_line(2)[:50])
    code, out = run("csv", "--db", db, "--rejects", str(tmp_path / "r.txt"), str(master))
    assert code == 0, out
    assert "1 lines: 1 calls stored, 0 already there, 0 rejected, 1 left for the next run" in out


def test_queue_log_from_a_table(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    pbx_url = f"sqlite:///{tmp_path / 'asterisk.db'}"
    with create_engine(pbx_url).begin() as conn:
        conn.execute(text("CREATE TABLE queuelog (time TEXT, callid TEXT, queuename TEXT, "
                          "agent TEXT, event TEXT, data1 TEXT, data2 TEXT, data3 TEXT, "
                          "data4 TEXT, data5 TEXT)"))  # fmt: skip
        conn.execute(text("INSERT INTO queuelog VALUES ('1710403215', '1710403210.700', 'suport', "
                          "'NONE', 'ENTERQUEUE', '', '0721555001', '1', '', '')"))  # fmt: skip
    code, out = run("queue-log", "--db", db, "--db-url", pbx_url, "--table", "queuelog")
    assert code == 0 and "1 lines:" in out, out
    code, out = run("queue-log", "--db", db)
    assert code == 2 and "give a queue_log FILE or --db-url URL" in out
