"""Every way a request can fail reaches the caller as one exception of the client's tree,
with the server's own messages, against our real server (and a switch in front of it that
fails on purpose for 5xx and broken answers)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from cdrapi.client import (
    APIError,
    AsyncClient,
    AuthenticationError,
    Client,
    ClientError,
    InvalidRequestError,
    NotFoundError,
    ResponseError,
    Retry,
    ServerError,
    SignatureError,
    TransportError,
)
from tests.client.conftest import FAST, KEY, TOKEN, Fault, Server
from tests.conftest import free_port


def test_wrong_token_is_an_authentication_error(server: Server) -> None:
    with (
        Client(server.url, "not-the-token", KEY, retry=FAST) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.page()
    error = caught.value
    assert error.status_code == 401
    assert error.messages == ["Unauthorized: a valid 'Authorization: Bearer <token>' is required"]
    assert str(error).startswith(f"HTTP 401 from {server.url}/api/cdr: Unauthorized")
    assert len(server.switch.requests) == 1  # a 4xx is never retried


@pytest.mark.parametrize("key", ["not-the-key", None])
def test_wrong_or_missing_api_key_is_a_signature_error(server: Server, key: str | None) -> None:
    with (
        Client(server.url, TOKEN, key, retry=FAST) as client,
        pytest.raises(SignatureError) as caught,
    ):
        list(client.iter_records())
    assert caught.value.status_code == 403
    assert caught.value.messages == ["Invalid api_hash"]
    assert len(server.switch.requests) == 1


def test_an_unknown_filter_is_refused_with_the_vendors_words(server: Server) -> None:
    with server.client() as client, pytest.raises(InvalidRequestError) as caught:
        client.page(from_idxx=1)
    assert caught.value.status_code == 400
    assert caught.value.messages == ["Invalid filter: from_idxx"]
    assert str(caught.value).endswith(": Invalid filter: from_idxx")


def test_every_bad_value_is_reported_at_once(server: Server) -> None:
    with server.client(json=True) as client, pytest.raises(InvalidRequestError) as caught:
        list(client.iter_records(direction="SIDEWAYS", date_between=("2024-13-01", None), x=1))
    assert caught.value.messages == [
        "Invalid direction: SIDEWAYS (expected one of IN, OUT, INTERNAL)",
        'Invalid date_between: ["2024-13-01",null] (no such date)',
        "Invalid filter: x",
    ]
    assert len(server.switch.requests) == 1


def test_a_wrong_path_is_a_not_found_api_error_with_its_status(server: Server) -> None:
    with Client(server.url + "/api/cdr/v2", TOKEN, KEY, retry=FAST) as client:
        assert client.url == server.url + "/api/cdr/v2/api/cdr"
        with pytest.raises(APIError) as caught:
            client.page()
    assert type(caught.value) is NotFoundError
    assert caught.value.status_code == 404
    assert caught.value.messages == ["Not found"]


def test_a_redirect_says_where_to(server: Server) -> None:
    server.switch.always = Fault(status=301, headers={"location": "https://pbx.example.com/"})
    with server.client() as client, pytest.raises(APIError) as caught:
        client.page()
    assert caught.value.status_code == 301
    assert caught.value.messages == ["redirected to https://pbx.example.com/: use that URL"]
    assert len(server.switch.requests) == 1


def test_server_errors_are_retried_then_raised(server: Server) -> None:
    server.switch.always = Fault(status=500)
    with (
        server.client(retry=Retry(retry_for=0.2, backoff=0.01, max_backoff=0.02)) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.page()
    assert caught.value.status_code == 500
    assert caught.value.messages == ["Failing on purpose with 500"]
    assert str(caught.value).endswith("(gave up after retrying for 0.2s)")
    assert len(server.switch.requests) >= 3


def test_refused_connections_are_transport_errors() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with (
        Client(url, TOKEN, retry=Retry(retry_for=0)) as client,
        pytest.raises(TransportError) as caught,
    ):
        client.page()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert str(caught.value).startswith(f"{url}/api/cdr: ConnectError")


def test_a_slow_server_is_a_timeout(server: Server) -> None:
    server.switch.always = Fault(delay=1.0)
    with (
        server.client(timeout=0.2, retry=Retry(retry_for=0.1, backoff=0)) as client,
        pytest.raises(TransportError) as caught,
    ):
        client.page()
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(server.switch.requests) == 2


def test_a_dropped_connection_is_a_transport_error(server: Server) -> None:
    server.switch.always = Fault(cut=True)
    with (
        server.client(retry=Retry(retry_for=0)) as client,
        pytest.raises(TransportError) as caught,
    ):
        client.page()
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b'{"has_error": false, "pagination": [], "results": []}',
        b'{"has_error": false, "pagination": {"row_count": 1}, "results": [{}]}',
        b"[1, 2]",
    ],
)
def test_an_answer_that_is_not_the_protocol_is_a_response_error(
    server: Server, body: bytes
) -> None:
    server.switch.always = Fault(body=body)
    with server.client() as client, pytest.raises(ResponseError):
        client.page()
    assert len(server.switch.requests) == 1


def test_errors_share_one_root_and_the_async_client_raises_the_same(server: Server) -> None:
    for cls in (TransportError, ResponseError, APIError, AuthenticationError, ServerError):
        assert issubclass(cls, ClientError)

    async def attempt(**filters: Any) -> None:
        async with AsyncClient(server.url, TOKEN, KEY, retry=FAST) as client:
            await client.page(**filters)

    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(attempt(nope=1))
    assert caught.value.messages == ["Invalid filter: nope"]


def test_arguments_that_cannot_work_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Client("ftp://pbx.example.com", TOKEN)
    with Client("http://127.0.0.1:9", TOKEN) as client, pytest.raises(ValueError):
        client.page(page=0)
    with pytest.raises(ValueError):
        Retry(retry_for=-1)
    with pytest.raises(ValueError):
        Retry(backoff=float("nan"))
