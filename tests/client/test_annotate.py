"""``Client.annotate`` and ``AsyncClient.annotate`` against cdrapi's real server on
loopback: a signed form (or JSON) request to ``/api/cdr/annotate`` sets the fields and
returns the records as ``/api/cdr`` then serves them; the server's refusals are the client's
exception tree (404 a ``NotFoundError``, 400 ``InvalidRequestError``, 401, 403); a 503 is
retried (an annotation sent twice sets the same values); wrong arguments are refused before
anything is sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdrapi.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    InvalidRequestError,
    NotFoundError,
    SignatureError,
)
from cdrapi.client.annotation import annotation_body
from cdrapi.protocol.encoding import parse_str
from cdrapi.protocol.signing import verify
from tests.client.conftest import FAST, KEY, TOKEN, Fault, Server, server_with


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with server_with(tmp_path / "calls.db", 30) as server:
        yield server


@pytest.mark.parametrize("json", [False, True])
def test_annotate_sets_the_fields_and_returns_the_records(server: Server, json: bool) -> None:
    linkedid = server.rows[3]["linkedid"]
    with server.client(json=json) as client:
        records = client.annotate(linkedid=linkedid, customer_id="C-1", comments="Called back")
        assert [r["id"] for r in records] == [str(r["id"]) for r in server.rows
                                               if r["linkedid"] == linkedid]  # fmt: skip
        assert records == client.page(linkedid=linkedid).records  # as /api/cdr now serves them
        assert {(r["customer_id"], r["comments"]) for r in records} == {("C-1", "Called back")}
        # None leaves a field as it is, "" clears it; by id (an int) or uniqueid.
        (one,) = client.annotate(id=int(records[0]["id"]), comments="", external_id="crm-1")
        assert (one["customer_id"], one["comments"], one["external_id"]) == ("C-1", None, "crm-1")
        (same,) = client.annotate(uniqueid=one["uniqueid"], external_info="ÎNCĂ & 100%")
        assert same == {**one, "external_info": "ÎNCĂ & 100%"}
    (seen,) = [r for r in server.switch.requests if r.path == "/api/cdr/annotate"][:1]
    assert seen.method == "POST" and seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["content-type"] == ("application/json" if json else "text/xml")


def test_the_async_client_annotates_too(server: Server) -> None:
    async def main() -> list[list[str]]:
        async with AsyncClient(server.url, TOKEN, KEY, retry=FAST) as client:
            done = await asyncio.gather(
                *(client.annotate(id=row["id"], customer_id=f"C-{row['id']}")
                  for row in server.rows[:4])
            )  # fmt: skip
            return [[r["customer_id"] for r in records] for records in done]

    assert asyncio.run(main()) == [[f"C-{row['id']}"] for row in server.rows[:4]]


def test_refusals_are_the_client_exception_tree(server: Server) -> None:
    with server.client() as client:
        with pytest.raises(NotFoundError) as missing:
            client.annotate(uniqueid="no-such-call", comments="x")
        assert missing.value.status_code == 404
        assert missing.value.messages == ["Not found: no call with uniqueid no-such-call"]
        with pytest.raises(InvalidRequestError) as invalid:
            client.annotate(id=1, comments="x" * 4001, customer_id="a\tb")
        assert invalid.value.messages == [
            "Invalid customer_id: control character U+0009 at position 2",
            "Invalid comments: longer than 4000 characters (4001)",
        ]
    with server.client(api_key="wrong") as client, pytest.raises(SignatureError):
        client.annotate(id=1, comments="x")
    stranger = Client(server.url, "wrong-token", KEY, retry=FAST)
    with stranger as client, pytest.raises(AuthenticationError):
        client.annotate(id=1, comments="x")


def test_a_503_is_retried(server: Server) -> None:
    server.switch.fail(Fault(status=503, retry_after="0"))
    with server.client() as client:
        (record,) = client.annotate(id=server.rows[0]["id"], comments="once more")
    assert record["comments"] == "once more"
    assert [r.path for r in server.switch.requests] == ["/api/cdr/annotate"] * 2


def test_wrong_arguments_are_refused_before_anything_is_sent(server: Server) -> None:
    with server.client() as client:
        with pytest.raises(ValueError, match="exactly one of id, uniqueid, linkedid"):
            client.annotate(comments="x")
        with pytest.raises(ValueError, match="exactly one of id, uniqueid, linkedid"):
            client.annotate(id=1, linkedid="1.2", comments="x")
        with pytest.raises(ValueError, match="at least one of customer_id"):
            client.annotate(id=1)
        with pytest.raises(TypeError):
            client.annotate(id=True, comments="x")
        with pytest.raises(TypeError):
            client.annotate(id=1, comments=5)  # type: ignore[arg-type]
    assert server.switch.requests == []


def test_the_body_is_signed_as_the_vendor_signs() -> None:
    body, content_type = annotation_body(
        {"id": None, "uniqueid": None, "linkedid": "1.2"},
        {"customer_id": "C 1", "comments": None},
        KEY,
    )
    assert content_type == "text/xml"
    params = parse_str(body.decode())
    assert params["call"] == {"linkedid": "1.2"} and params["set"] == {"customer_id": "C 1"}
    assert verify(params, KEY)
