"""CRM fields from the dialplan (issue 12 item 3): the config file's ``[fields]`` table
fills ``customer_id``, ``external_id``, ``external_info``, ``accounting_value`` and
``comments`` from the PBX's records, as the API then shows them.

The fixtures (tests/fixtures/crm_fields/) are written from Asterisk's formats: a header
CSV export with extra columns, cdr_custom lines of the sample ``Master.csv`` mapping with
two ``${CSV_QUOTE(${CDR(...)})}`` columns added, a cdr_csv Master.csv (newcdrcolumns)
whose ``userfield`` the dialplan set to ``ext=...;cust=...``; the SQL ``cdr`` tables are
FreePBX's on MariaDB and cdr_sqlite3_custom's, each with extra columns as
cdr_adaptive_odbc fills them from CDR variables of the same name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from cdrapi.cli.ingest import ingest
from cdrapi.ingest import IngestRun, Reject, ingest_csv, ingest_db, rederive
from cdrapi.settings import Settings, load_settings
from cdrapi.store.annotations import annotate
from cdrapi.store.engine import connect
from tests.conftest import app_client
from tests.ingest.cdr_table import SQLITE, cdr_row, insert_cdrs
from tests.ingest.conftest import TOKEN, api, rows

FIXTURES = Path(__file__).parents[1] / "fixtures" / "crm_fields"
CUSTOM = (
    "clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,start,answer,end,duration,"
    "billsec,disposition,amaflags,accountcode,uniqueid,userfield,sequence"
)
CRM = ("customer_id", "external_id", "external_info", "accounting_value", "comments")


def settings(tmp_path: Path, fields: str, db: str | None = None) -> Settings:
    """The settings of a config file with this ``[fields]`` table (and the API token)."""
    config = tmp_path / "cdrapi.toml"
    db = db or f"sqlite:///{tmp_path / 'store.db'}"
    config.write_text(f'db = "{db}"\napi_token = "{TOKEN}"\n\n[fields]\n{fields}')
    return load_settings(config)


def crm(chosen: Settings) -> dict[str, dict[str, Any]]:
    """The CRM fields of every record the API serves, by uniqueid."""
    with app_client(chosen) as client:
        return {r["uniqueid"]: {k: r[k] for k in CRM} for r in api(client)}


def nothing(**given: Any) -> dict[str, Any]:
    return {name: given.get(name) for name in CRM}


def test_header_csv_extra_columns(tmp_path: Path) -> None:
    chosen = settings(tmp_path, (
        'customer_id = "customer_id"\n'       # the header says "Customer ID"
        'comments = "crm note"\n'             # "CRM Note"
        'accounting_value = "Cost"\n'         # "cost": "0,45", an unquoted \\N
        'external_id = "ticket"\n'            # no such column: left empty
    ))  # fmt: skip
    summary = ingest_csv(connect(chosen.db), [FIXTURES / "export.csv"], IngestRun(chosen))
    assert (summary.stored, summary.rejected) == (3, 0)
    assert crm(chosen) == {
        "1714986000.1": nothing(customer_id="C-1001", comments="Wants a call back, re: invoice 7"),
        "1714986300.3": nothing(),
        "1714986600.5": nothing(customer_id="C-2002", accounting_value="0.45"),
    }


def test_a_columns_rename_names_the_column(tmp_path: Path) -> None:
    chosen = settings(tmp_path, 'external_id = "ticket"\n')
    columns = "CRM Note=ticket,Customer ID="  # a rename wins over a header name
    ingest_csv(connect(chosen.db), [FIXTURES / "export.csv"], IngestRun(chosen), columns=columns)
    assert [values["external_id"] for values in crm(chosen).values()] == [
        "Wants a call back, re: invoice 7", None, None,
    ]  # fmt: skip


def test_cdr_custom_layout_with_columns(tmp_path: Path) -> None:
    chosen = settings(tmp_path, 'external_id = "external_id"\nexternal_info = "crm_info"\n')
    columns = f"{CUSTOM},external_id,crm_info"
    store = connect(chosen.db)
    summary = ingest_csv(store, [FIXTURES / "cdr-custom.csv"], IngestRun(chosen), columns=columns)
    assert (summary.stored, summary.rejected) == (2, 0)
    assert crm(chosen) == {
        "1714986000.1": nothing(external_id="TCK-4711",
                                external_info="Ticket 4711: printer on floor 2"),
        "1714986300.3": nothing(),
    }  # fmt: skip
    # the same file with no [fields]: --columns does not know those names
    runner = CliRunner().invoke(ingest, ["csv", str(FIXTURES / "cdr-custom.csv"),
                                         "--db", f"sqlite:///{tmp_path / 'x.db'}",
                                         "--columns", columns])  # fmt: skip
    assert runner.exit_code != 0
    assert "unknown field(s) external_id, crm_info" in runner.output


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_userfield_patterns(tmp_path: Path, db_url: str) -> None:
    chosen = settings(tmp_path, (
        'external_id = { column = "userfield", pattern = "ext=(\\\\d+)" }\n'
        'customer_id = { column = "userfield", pattern = "cust=([^;]+)" }\n'
    ), db=db_url)  # fmt: skip
    summary = ingest_csv(connect(chosen.db), [FIXTURES / "Master.csv"], IngestRun(chosen))
    assert (summary.stored, summary.rejected) == (3, 0)
    assert crm(chosen) == {
        "1714986000.1": nothing(external_id="4711", customer_id="C-1001"),
        "1714986300.3": nothing(),  # no userfield
        "1714986600.5": nothing(customer_id="C-2002"),  # no ext=
    }
    with app_client(chosen) as client:  # the external_id filter finds it
        assert [r["uniqueid"] for r in api(client, external_id="4711")] == ["1714986000.1"]


def test_values_that_cannot_be_stored_reject_their_line(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    lines = (FIXTURES / "Master.csv").read_text().splitlines(keepends=True)
    too_long = lines[0].replace("cust=C-1001", "cust=" + "x" * 81)
    no_number = lines[1].replace('"","","1714986300.3"', '"","cost=n/a","1714986300.3"')
    master.write_text(too_long + lines[2] + no_number)
    chosen = settings(tmp_path, (
        'customer_id = { column = "userfield", pattern = "cust=([^;]+)" }\n'
        'accounting_value = { column = "peeraccount", pattern = "cost=(.*)" }\n'
    ))  # fmt: skip
    rejects = tmp_path / "rejects.txt"
    found: list[Reject] = []
    run = IngestRun(chosen, rejects=rejects, report=found.append)
    summary = ingest_csv(connect(chosen.db), [master], run)
    assert (summary.stored, summary.rejected) == (1, 2)
    assert [str(reject) for reject in found] == [
        f"{master}:1: [fields] customer_id: the value in column 'userfield' has 81 "
        "characters, more than the 80 the field holds",
        f"{master}:3: [fields] accounting_value: 'n/a' (column 'peeraccount') is not a number",
    ]
    assert rejects.read_text() == too_long + no_number
    assert crm(chosen) == {"1714986600.5": nothing(customer_id="C-2002")}


def _extra_columns(conn: Any, kind: str) -> None:
    """The extra columns an integrator adds for cdr_adaptive_odbc (or by ALTER TABLE)."""
    text_type = "varchar(80)" if kind == "mysql" else "TEXT"
    for name in ("customer_id", "crm_ticket", "call_cost"):
        conn.execute(text(f"ALTER TABLE cdr ADD COLUMN {name} {text_type}"))


def _table_rows() -> list[dict[str, Any]]:
    return [
        cdr_row(1, "2024-05-06 09:00:00", customer_id="C-1001", crm_ticket="TCK-1",
                call_cost="1.20", userfield="note=VIP"),
        cdr_row(2, "2024-05-06 09:05:00", "NO ANSWER", customer_id=None, crm_ticket=""),
    ]  # fmt: skip


TABLE_FIELDS = (
    'customer_id = "CUSTOMER_ID"\n'  # matched as the table's columns are: any case
    'external_id = "crm_ticket"\n'
    'accounting_value = "call_cost"\n'
    'comments = { column = "userfield", pattern = "note=(.*)" }\n'
    'external_info = "crm_info"\n'  # the table has none: said once
)
TABLE_RECORDS = {
    "1710400000.1": nothing(customer_id="C-1001", external_id="TCK-1",
                            accounting_value="1.20", comments="VIP"),
    "1710400000.2": nothing(),
}  # fmt: skip


def test_sql_table_extra_columns_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'master.db'}"
    with create_engine(url).begin() as conn:
        conn.execute(text(SQLITE))
        _extra_columns(conn, "sqlite")
        insert_cdrs(conn, _table_rows())
    chosen = settings(tmp_path, TABLE_FIELDS)
    summary = ingest_db(connect(chosen.db), url, IngestRun(chosen))
    assert (summary.stored, summary.rejected) == (2, 0)
    assert [w.split("#cdr: ", 1)[1] for w in summary.warnings] == [
        "[fields] external_info: table 'cdr' has no column 'crm_info'; left empty"
    ]
    assert crm(chosen) == TABLE_RECORDS


def test_sql_table_extra_columns_on_mariadb(tmp_path: Path, freepbx: tuple[str, Any]) -> None:
    url, pbx = freepbx
    with pbx.begin() as conn:
        _extra_columns(conn, "mysql")
        insert_cdrs(conn, _table_rows())
    chosen = settings(tmp_path, TABLE_FIELDS)
    result = CliRunner().invoke(ingest, ["db", url, "--config", str(tmp_path / "cdrapi.toml"),
                                         "--rejects", str(tmp_path / "rejects.txt")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: db:" in result.output and "has no column 'crm_info'" in result.output
    assert crm(chosen) == TABLE_RECORDS


def test_an_annotation_wins_over_the_mapping(tmp_path: Path) -> None:
    chosen = settings(tmp_path, (
        'customer_id = { column = "userfield", pattern = "cust=([^;]+)" }\n'
        'external_id = { column = "userfield", pattern = "ext=(\\\\d+)" }\n'
    ))  # fmt: skip
    store = connect(chosen.db)
    ingest_csv(store, [FIXTURES / "Master.csv"], IngestRun(chosen))
    done = annotate(store, "uniqueid", "1714986000.1", {"customer_id": "C-9"}, "crm")
    assert done.matched == 1
    # read again from the start: the stored call keeps its annotation
    again = ingest_csv(store, [FIXTURES / "Master.csv"], IngestRun(chosen, from_start=True))
    assert again.stored == 0
    assert crm(chosen)["1714986000.1"] == nothing(customer_id="C-9", external_id="4711")
    # derived again with other patterns: the annotated field stays, the other follows
    changed = settings(tmp_path, (
        'customer_id = { column = "userfield", pattern = "cust=C-(\\\\d+)" }\n'
        'external_id = { column = "userfield", pattern = "ext=(\\\\d\\\\d)" }\n'
    ))  # fmt: skip
    assert rederive(store, IngestRun(changed)).updated == 3
    assert crm(changed) == {
        "1714986000.1": nothing(customer_id="C-9", external_id="47"),
        "1714986300.3": nothing(),
        "1714986600.5": nothing(customer_id="2002"),
    }


def test_rederive_fills_calls_stored_before_fields_was_set(tmp_path: Path) -> None:
    plain = Settings(db=f"sqlite:///{tmp_path / 'store.db'}", api_token=TOKEN)
    store = connect(plain.db)
    ingest_csv(store, [FIXTURES / "Master.csv"], IngestRun(plain))
    assert all(values == nothing() for values in crm(plain).values())
    chosen = settings(tmp_path, 'external_id = { column = "userfield", pattern = "ext=(\\\\d+)" }')
    rederive(store, IngestRun(chosen))
    assert rows(store, "uniqueid", "external_id") == [
        ("1714986000.1", "4711"), ("1714986300.3", None), ("1714986600.5", None),
    ]  # fmt: skip


def test_cdrapi_ingest_rederive_says_which_calls_keep_their_value(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(
        (FIXTURES / "Master.csv").read_text().replace("cust=C-1001", "cust=" + "x" * 81)
    )
    plain = Settings(db=f"sqlite:///{tmp_path / 'store.db'}", api_token=TOKEN)
    store = connect(plain.db)
    ingest_csv(store, [master], IngestRun(plain))  # no [fields] yet: every line stored
    settings(tmp_path, 'customer_id = { column = "userfield", pattern = "cust=([^;]+)" }')
    done = CliRunner().invoke(
        ingest, ["rederive", "--config", str(tmp_path / "cdrapi.toml")], catch_exceptions=False
    )
    assert done.exit_code == 0, done.output
    (first_id,) = [i for i, u in rows(store, "id", "uniqueid") if u == "1714986000.1"]
    assert (
        f"warning: call {first_id}: [fields] customer_id: the value in column 'userfield' has "
        "81 characters, more than the 80 the field holds; its customer_id stays as it was"
    ) in done.output
    assert rows(store, "uniqueid", "customer_id")[0] == ("1714986000.1", None)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ('customer = "x"\n', "[fields] has no field 'customer' (it fills customer_id, "),
        ('external_id = { column = "userfield", pattern = "ext=(\\\\d+" }\n',
         "[fields] external_id.pattern: not a regular expression: missing ), unterminated "
         "subpattern at position 4"),
        ('external_id = { column = "userfield", pattern = "(a)|(b)" }\n',
         "[fields] external_id.pattern: the pattern has 2 groups"),
        ('comments = { colum = "note" }\n', "[fields] comments.colum: unknown key"),
        ("comments = 5\n", "[fields] comments: expected a column name or a table"),
        ('comments = " note"\n', "[fields] comments.column: a column name must not be empty"),
    ],
)  # fmt: skip
def test_config_errors_are_one_line_naming_the_key(tmp_path: Path, fields: str, error: str) -> None:
    config = tmp_path / "cdrapi.toml"
    config.write_text(f'db = "sqlite:///{tmp_path / "store.db"}"\n[fields]\n{fields}')
    done = CliRunner().invoke(
        ingest, ["csv", str(FIXTURES / "Master.csv"), "--config", str(config)],
        catch_exceptions=False,
    )  # fmt: skip
    assert done.exit_code != 0
    lines = done.output.strip().splitlines()
    assert len(lines) == 1, done.output
    assert lines[0].startswith("Error: invalid configuration: ")
    assert error in lines[0]
    assert not (tmp_path / "store.db").exists()  # stopped before anything was stored
