"""``POST /api/cdr/annotate`` over HTTP (the real app in process; the real php binary on
loopback), on SQLite and PostgreSQL: a signed form, JSON or multipart body sets the CRM
fields of one call's records and answers them as /api/cdr now serves them; every refusal
is the vendor's envelope with /api/cdr's status for the same failure (401, 403, 413, 400,
404, 405, 503); a scoped token annotates only the calls it sees (the others look not
found); the audit names the token by its place in the configuration, never the token."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, select, update

from cdrapi import http_build_query, sign
from cdrapi.settings import Settings, TokenScope
from cdrapi.store.annotations import audit_trail, call_annotations
from cdrapi.store.engine import connect
from cdrapi.store.schema import calls as calls_table
from cdrapi.store.transaction import writing
from tests.conftest import app_client, need
from tests.data import load, sample_rows
from tests.server.conftest import UNAVAILABLE, assert_envelope

TOKEN = "annotate-admin-token"
SCOPED = "annotate-project-two"
KEY = "annotate-key"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHP = Path(__file__).parents[1] / "fixtures" / "annotate" / "annotate.php"
LINKEDID = "1704067200.3"  # sample_rows: calls 3, 4 and 5
Serve = Callable[[Settings], AbstractContextManager[str]]


@pytest.fixture
def calls(db_url: str) -> tuple[Engine, list[dict[str, Any]]]:
    engine = connect(db_url)
    return engine, load(engine, sample_rows(30))


@pytest.fixture
def api(calls: tuple[Engine, list[dict[str, Any]]], db_url: str) -> Iterator[httpx.Client]:
    settings = Settings(
        db=db_url,
        api_token=f"other-token,{TOKEN}",
        api_key=KEY,
        scoped_tokens=[TokenScope(token=SCOPED, projects=(2,))],
    )
    with app_client(settings) as client:
        yield client


def signed(params: dict[str, Any], key: str = KEY) -> dict[str, Any]:
    return {**params, "api_hash": sign(params, key)}


def form(params: dict[str, Any]) -> dict[str, Any]:
    """A PHP form body, sent with Content-Type text/xml as the vendor's clients do."""
    body = http_build_query(signed(params)).encode()
    return {"content": body, "headers": {**AUTH, "Content-Type": "text/xml"}}


def cdr(client: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    response = client.post("/api/cdr", json=signed({"page": 1, "filters": filters}), headers=AUTH)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_a_signed_form_sets_the_fields_of_every_record_of_the_call(api: httpx.Client) -> None:
    before = cdr(api, linkedid=LINKEDID)
    assert len(before) == 3
    fields = {
        "customer_id": "C-1001",
        "external_id": "crm-77",
        "external_info": "Ofertă & discount: 10%",
        "comments": "Called back\nok",
    }
    params = {"call": {"linkedid": LINKEDID}, "set": fields}
    response = api.post("/api/cdr/annotate", **form(params))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["has_error", "messages", "pagination", "results"]
    assert body["has_error"] is False and body["messages"] == []
    assert body["pagination"] == {"row_count": 3, "page_size": 100, "current_page": 1,
                                  "max_page": 1}  # fmt: skip
    after = cdr(api, linkedid=LINKEDID)
    assert body["results"] == after  # the records as /api/cdr now serves them
    for old, new in zip(before, after, strict=True):
        assert new["customer_id"] == "C-1001" and new["external_id"] == "crm-77"
        assert new["external_info"] == "Ofertă & discount: 10%"
        assert new["comments"] == "Called back\nok"
        changed = {k for k in old if old[k] != new[k]}
        assert changed <= {"customer_id", "external_id", "external_info", "comments"}
    assert [r["id"] for r in cdr(api, external_id="crm-77")] == [r["id"] for r in after]


@pytest.mark.parametrize("kind", ["json", "multipart"])
def test_json_and_multipart_bodies_are_read_as_on_api_cdr(api: httpx.Client, kind: str) -> None:
    target = cdr(api)[7]
    params = signed({"call": {"id": target["id"]}, "set": {"comments": f"via {kind}"}})
    if kind == "json":
        response = api.post("/api/cdr/annotate", content=orjson.dumps(params), headers=AUTH)
    else:
        fields = {"call[id]": target["id"], "set[comments]": f"via {kind}",
                  "api_hash": params["api_hash"]}  # fmt: skip
        parts = [f'--b0undary\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                 for name, value in fields.items()]  # fmt: skip
        body = ("".join(parts) + "--b0undary--\r\n").encode()
        headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=b0undary"}
        response = api.post("/api/cdr/annotate", content=body, headers=headers)
    assert response.status_code == 200, response.text
    (record,) = response.json()["results"]
    assert record["id"] == target["id"] and record["comments"] == f"via {kind}"
    # A JSON null leaves a field alone (http_build_query leaves it out of what is signed).
    keep = signed({"call": {"id": int(target["id"])}, "set": {"comments": None, "customer_id": 5}})
    response = api.post("/api/cdr/annotate", json=keep, headers=AUTH)
    assert response.status_code == 200, response.text
    (record,) = response.json()["results"]
    assert (record["comments"], record["customer_id"]) == (f"via {kind}", "5")


def test_an_empty_value_clears_a_field(api: httpx.Client) -> None:
    target = cdr(api)[2]
    call = {"id": target["id"]}
    assert api.post(
        "/api/cdr/annotate", **form({"call": call, "set": {"comments": "x"}})
    ).is_success
    response = api.post("/api/cdr/annotate", **form({"call": call, "set": {"comments": ""}}))
    assert response.status_code == 200
    assert response.json()["results"][0]["comments"] is None


def test_refusals_are_the_envelope_with_api_cdr_statuses(
    api: httpx.Client, calls: tuple[Engine, list[dict[str, Any]]]
) -> None:
    engine, rows = calls
    good = {"call": {"uniqueid": rows[0]["uniqueid"]}, "set": {"comments": "x"}}
    url = "/api/cdr/annotate"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = api.post(url, content=http_build_query(signed(good)), headers=headers)
        assert assert_envelope(response, 401) == [
            "Unauthorized: a valid 'Authorization: Bearer <token>' is required"
        ]
        assert response.headers["www-authenticate"] == "Bearer"
    for params in (good, signed(good, "wrong-key"), {**signed(good), "set": {"comments": "y"}}):
        response = api.post(url, json=params, headers=AUTH)
        assert assert_envelope(response, 403) == ["Invalid api_hash"]
    huge = signed({**good, "set": {"comments": "x" * (128 * 1024)}})
    response = api.post(url, json=huge, headers=AUTH)
    assert assert_envelope(response, 413) == ["Request body too large: the limit is 131072 bytes"]

    def refused(params: dict[str, Any]) -> list[str]:
        return assert_envelope(api.post(url, json=signed(params), headers=AUTH), 400)

    choose = "give exactly one of id, uniqueid, linkedid"
    fields = "customer_id, external_id, external_info, comments"
    assert refused({"set": {"comments": "x"}}) == [
        "Missing call: give one of id, uniqueid, linkedid"
    ]
    assert refused({"call": {"callid": "1"}, "set": {"comments": "x"}}) == [
        "Invalid selector: callid"
    ]
    assert refused({"call": {"id": 1, "linkedid": "a"}, "set": {"comments": "x"}}) == [
        f"Invalid call: {choose} (got id, linkedid)"
    ]
    assert refused({"call": {"id": "1e3"}, "set": {"comments": "x"}}) == [
        "Invalid id: 1e3 (expected a positive integer)"
    ]
    assert refused({"call": "41", "set": {"comments": "x"}}) == [
        "Invalid call: 41 (expected a map with one of id, uniqueid, linkedid)"
    ]
    assert refused({"call": {"id": 1}}) == [f"Missing set: give at least one of {fields}"]
    assert refused({"call": {"id": 1}, "set": {"comments": None}}) == [
        f"Missing set: give at least one of {fields}"
    ]
    assert refused({"call": {"id": 1}, "set": {"user_fullname": "x", "customer_id": "C" * 81,
                                               "comments": "a\x00b", "external_id": ["x"]}}) == [
        "Invalid field: user_fullname",
        "Invalid customer_id: longer than 80 characters (81)",
        "Invalid comments: control character U+0000 at position 2",
        'Invalid external_id: ["x"] is not text',
    ]  # fmt: skip
    nowhere = signed({"call": {"linkedid": "no-such-call"}, "set": good["set"]})
    response = api.post(url, json=nowhere, headers=AUTH)
    assert assert_envelope(response, 404) == ["Not found: no call with linkedid no-such-call"]
    assert assert_envelope(api.get(url, headers=AUTH), 405) == ["Method not allowed"]
    assert audit_trail(engine, [row["id"] for row in rows]) == []  # nothing refused was written


def test_a_scoped_token_annotates_only_the_calls_it_sees(
    api: httpx.Client, calls: tuple[Engine, list[dict[str, Any]]]
) -> None:
    engine, rows = calls
    scoped = {"Authorization": f"Bearer {SCOPED}"}
    mine = next(row for row in rows if row["project_id"] == 2)
    theirs = next(row for row in rows if row["project_id"] != 2)

    def post(row: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        params = signed({"call": {"id": row["id"]}, "set": {"customer_id": "C-scope"}})
        return api.post("/api/cdr/annotate", json=params, headers=headers)

    assert post(mine, scoped).status_code == 200
    hidden = post(theirs, scoped)
    assert assert_envelope(hidden, 404) == [f"Not found: no call with id {theirs['id']}"]
    absent = post({"id": 10**9}, scoped)
    assert hidden.content.replace(str(theirs["id"]).encode(), b"N") == absent.content.replace(
        b"1000000000", b"N"
    )  # the same answer as a call that does not exist
    assert post(theirs, AUTH).status_code == 200  # api_token sees every call
    trail = audit_trail(engine, [mine["id"], theirs["id"]])
    assert [(e["call_id"], e["annotated_by"]) for e in trail] == [
        (mine["id"], "[[tokens]] #1"),
        (theirs["id"], "api_token #2"),
    ]
    with engine.connect() as conn:
        stored = [str(value) for row in conn.execute(select(call_annotations)) for value in row]
    assert not any(TOKEN in value or SCOPED in value for value in stored)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_call_not_there_is_404_at_once_while_an_import_holds_the_store(
    api: httpx.Client, calls: tuple[Engine, list[dict[str, Any]]], db_url: str
) -> None:
    """The 404 of a call that is not there takes no write lock: while another process's
    long write transaction holds SQLite's (an import), it answers at once, not after the
    busy timeout (10 s) with a 503 "database is locked"."""
    rows = calls[1]
    importer = connect(db_url)
    params = signed({"call": {"linkedid": "no-such-call"}, "set": {"comments": "x"}})
    with writing(importer, "a long import") as conn:
        conn.execute(
            update(calls_table).where(calls_table.c.id == rows[0]["id"]).values(comments="busy")
        )
        started = time.monotonic()
        response = api.post("/api/cdr/annotate", json=params, headers=AUTH)
        took = time.monotonic() - started
    assert assert_envelope(response, 404) == ["Not found: no call with linkedid no-such-call"]
    assert took < 5, took
    importer.dispose()


def test_an_unreadable_store_is_503(
    api: httpx.Client, calls: tuple[Engine, list[dict[str, Any]]]
) -> None:
    engine, rows = calls
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE call_annotations")
    params = signed({"call": {"id": rows[0]["id"]}, "set": {"comments": "x"}})
    response = api.post("/api/cdr/annotate", json=params, headers=AUTH)
    assert assert_envelope(response, 503) == UNAVAILABLE
    assert response.headers["retry-after"] == "5"


def test_php_signs_an_annotation_as_the_vendor_signs_requests(
    calls: tuple[Engine, list[dict[str, Any]]], db_url: str, serve: Serve
) -> None:
    need(shutil.which("php") is not None, "php-cli is not installed")
    settings = Settings(db=db_url, api_token=TOKEN, api_key=KEY)

    def run(base: str, key: str) -> tuple[int, dict[str, Any]]:
        env = {**os.environ, "CDRAPI_URL": f"{base}/api/cdr/annotate",
               "CDRAPI_API_TOKEN": TOKEN, "CDRAPI_API_KEY": key}  # fmt: skip
        done = subprocess.run(["php", str(PHP), LINKEDID], env=env, capture_output=True,
                              text=True, timeout=60, check=True)  # fmt: skip
        status, _, body = done.stdout.partition("\n")
        return int(status), orjson.loads(body)

    with serve(settings) as base:
        status, wrong = run(base, "not-the-key")
        assert (status, wrong["messages"]) == (403, ["Invalid api_hash"])
        status, body = run(base, KEY)
    assert status == 200, body
    assert len(body["results"]) == 3
    for record in body["results"]:
        assert record["linkedid"] == LINKEDID
        assert record["customer_id"] == "C-1001"
        assert record["external_id"] == "crm ticket #7"
        assert record["external_info"] == "Ședință & ofertă: 50% [VIP]"
        assert record["comments"] == "Sunat înapoi.\nClient mulțumit."
