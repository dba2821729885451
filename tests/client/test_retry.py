"""Retries against a real server that fails on purpose the first few times: 5xx, 429 with
Retry-After, connections dropped mid-answer. The caller sees only the records, all of them;
a 4xx (but 429) or a 5xx that would fail again (501, 505) is never tried twice; waits grow
exponentially, with jitter, within a budget of time. (Outages of the whole server, its port
closed: ``test_downtime.py``.)"""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from cdrapi.client import AsyncClient, RateLimitError, Retry
from cdrapi.client.errors import AuthenticationError, ServerError, TransportError
from cdrapi.client.retry import parse_retry_after
from tests.client.conftest import FAST, KEY, TOKEN, Fault, Seen, Server


def test_server_errors_then_success(server: Server) -> None:
    server.switch.fail(Fault(status=500), Fault(status=502), Fault(status=503), Fault(status=504))
    with server.client(retry=Retry(retry_for=5, backoff=0.01)) as client:
        page = client.page()
    assert [int(r["id"]) for r in page.records] == server.ids[:100]
    assert len(server.switch.requests) == 5


@pytest.mark.parametrize("status", [501, 505])
def test_server_errors_that_would_fail_again_are_not_retried(server: Server, status: int) -> None:
    server.switch.always = Fault(status=status)
    with (
        server.client(retry=Retry(retry_for=5, backoff=0)) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.page()
    assert caught.value.status_code == status
    assert len(server.switch.requests) == 1


def test_retry_after_is_honoured(server: Server) -> None:
    server.switch.fail(Fault(status=429, retry_after="1"))
    # The backoff alone would wait minutes: the server's Retry-After decides.
    with server.client(retry=Retry(retry_for=30, backoff=120, max_backoff=120)) as client:
        started = time.monotonic()
        records = list(client.iter_records())
        elapsed = time.monotonic() - started
    assert [int(r["id"]) for r in records] == server.ids
    first, second = server.switch.requests[:2]
    assert 0.9 <= second.at - first.at < 5
    assert elapsed < 10


def test_rate_limited_to_the_end_is_a_rate_limit_error(server: Server) -> None:
    server.switch.always = Fault(status=429, retry_after="0")  # "now": the backoff decides
    with (
        server.client(retry=Retry(retry_for=0.5, backoff=0.1, max_backoff=0.1)) as client,
        pytest.raises(RateLimitError) as caught,
    ):
        client.page()
    assert caught.value.retry_after == 0
    assert 2 <= len(server.switch.requests) <= 15  # not hammered in a tight loop


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_never_retried(server: Server, status: int) -> None:
    server.switch.always = Fault(status=status)
    with (
        server.client(retry=Retry(retry_for=5, backoff=0)) as client,
        pytest.raises(Exception) as caught,
    ):
        client.page()
    assert getattr(caught.value, "status_code", None) == status
    assert len(server.switch.requests) == 1


def test_dropped_connections_then_success(server: Server) -> None:
    server.switch.fail(Fault(cut=True), Fault(cut=True))
    with server.client(retry=Retry(retry_for=5, backoff=0.01)) as client:
        ids = [int(r["id"]) for r in client.iter_records()]
    assert ids == server.ids
    assert len(server.switch.requests) == 10 + 2 + 1  # 10 pages, 2 cut, 1 empty last round


def test_concurrent_pages_are_retried_and_still_in_order(server: Server) -> None:
    server.switch.fail(Fault(), Fault(status=503), Fault(cut=True), Fault(status=500))

    async def everything() -> list[int]:
        async with AsyncClient(server.url, TOKEN, KEY, concurrency=4, retry=FAST) as client:
            return [int(r["id"]) async for r in client.iter_records()]

    assert asyncio.run(everything()) == server.ids


def test_the_async_client_gives_up_like_the_sync_one(server: Server) -> None:
    server.switch.always = Fault(status=500)

    async def first_page() -> None:
        async with AsyncClient(server.url, TOKEN, KEY, retry=FAST) as client:
            await client.page()

    started = time.monotonic()
    with pytest.raises(ServerError, match=r"\(gave up after retrying for 0\.3s\)$"):
        asyncio.run(first_page())
    assert FAST.retry_for <= time.monotonic() - started < FAST.retry_for + 1
    assert len(server.switch.requests) >= 3


def test_backoff_is_exponential_with_full_jitter() -> None:
    policy = Retry(backoff=0.5, max_backoff=4)
    error = TransportError("down")
    for retry, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        waits = [policy.delay(retry, error) for _ in range(300)]
        assert all(0 <= wait <= cap for wait in waits)
        assert max(waits) > cap * 0.8 and min(waits) < cap * 0.2  # spread over [0, cap]
    told = RateLimitError(429, ["slow down"], retry_after=7)
    assert policy.delay(0, told) == 7
    assert Retry(max_retry_after=3).delay(0, told) == 3
    now = RateLimitError(429, ["slow down"], retry_after=0)
    assert all(0 <= policy.delay(0, now) <= 0.5 for _ in range(100))
    assert Retry() == Retry(retry_for=60, backoff=0.5, max_backoff=10, max_retry_after=60)
    assert not AuthenticationError(401, []).retryable


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_a_request_still_failing_after_another_was_answered_keeps_backing_off(
    server: Server,
) -> None:
    """Page 1 is answered while page 2 keeps failing: page 2's outage goes on, and its
    waits are waits again (not cut short by the answer that ended the last one)."""

    def choose(seen: Seen) -> Fault | None:
        return Fault(status=503) if seen.body.startswith(b"page=2&") else None

    server.switch.choose = choose
    policy = Retry(retry_for=1.0, backoff=0.05, max_backoff=0.1)

    async def both() -> None:
        async with AsyncClient(server.url, TOKEN, KEY, concurrency=2, retry=policy) as client:
            first = asyncio.create_task(client.page(2))
            await asyncio.sleep(0.2)
            await client.page(1)  # an answer: the outage seen so far ends
            with pytest.raises(ServerError):
                await first

    asyncio.run(both())
    tries = sum(1 for seen in server.switch.requests if seen.body.startswith(b"page=2&"))
    assert tries < 40  # about 1 s at 0.05-0.1 s waits; not a tight loop


def test_backoff_does_not_overflow_after_many_retries() -> None:
    policy = Retry(retry_for=math.inf, backoff=0.5, max_backoff=10)
    error = ServerError(503, ["busy"])
    assert 0 <= policy.delay(5000, error) <= 10
