"""One /api/cdr exchange, shared by the sync and async clients: the request's body and
headers (SPEC §2-3), and the answer read into a :class:`Page` or an error (SPEC §5).

By default the body is what the vendor's own clients send: PHP's ``http_build_query`` of
``{"page", "filters", "api_hash"}`` with ``Content-Type: text/xml``. With ``json=True`` it
is the same structure as JSON. ``api_hash`` is ``md5(http_build_query(params) . api_key)``
when an api_key is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import orjson

from cdrapi.client.errors import ResponseError, api_error
from cdrapi.client.retry import parse_retry_after
from cdrapi.protocol.encoding import http_build_query
from cdrapi.protocol.signing import HASH_KEY, sign

__all__ = ["Page", "Record", "endpoint", "read_page", "request_body"]

Record = dict[str, Any]
"""One call record: the 43 keys of SPEC §6 as the server sent them."""

ENDPOINT = "/api/cdr"
_FORM_TYPE = "text/xml"  # what the vendor's examples send with a form body
_JSON_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of results: its records and the server's ``pagination``."""

    records: list[Record]
    row_count: int
    page_size: int
    current_page: int
    max_page: int
    filters: dict[str, Any] = field(default_factory=dict, compare=False)
    """The filters the page was asked with (as sent)."""

    @property
    def last_id(self) -> int | None:
        """The id of the last record, ``None`` for an empty page."""
        return int(self.records[-1]["id"]) if self.records else None


def endpoint(url: str) -> str:
    """The /api/cdr URL for ``url``: the endpoint itself or the server's base URL."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"not an http(s) URL: {url!r}")
    path = parsed.path.rstrip("/")
    return str(parsed.copy_with(path=path if path.endswith(ENDPOINT) else path + ENDPOINT))


def request_body(
    page: int, filters: Mapping[str, Any], api_key: str | None, *, json: bool = False
) -> tuple[bytes, str]:
    """The body and Content-Type of a request for ``page`` with wire-ready ``filters``."""
    params: dict[str, Any] = {"page": page, "filters": dict(filters)}
    if api_key:
        params[HASH_KEY] = sign(params, api_key)
    if json:
        return orjson.dumps(params), _JSON_TYPE
    return http_build_query(params).encode("ascii"), _FORM_TYPE


def _messages(data: Any, response: httpx.Response) -> list[str]:
    location = response.headers.get("location")
    if response.is_redirect and location:
        return [f"redirected to {location}: use that URL"]
    if isinstance(data, dict):
        messages = data.get("messages")
        if isinstance(messages, list) and messages:
            return [str(message) for message in messages]
    text = response.content[:200].decode("utf-8", "replace").strip()
    return [text or response.reason_phrase or "no message"]


def _int(pagination: Mapping[str, Any], key: str) -> int:
    value = pagination.get(key)
    if isinstance(value, bool):
        raise TypeError(key)
    return int(cast(Any, value))


def read_page(response: httpx.Response, filters: Mapping[str, Any]) -> Page:
    """The page in ``response``, or raise the error it reports."""
    url = str(response.request.url)
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    status = response.status_code
    if status != 200 or not isinstance(data, dict) or data.get("has_error") is not False:
        if status == 200 and (not isinstance(data, dict) or "has_error" not in data):
            shown = response.content[:200].decode("utf-8", "replace")
            raise ResponseError(f"{url} did not answer with the /api/cdr JSON: {shown!r}")
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise api_error(status, _messages(data, response), url=url, retry_after=retry_after)
    pagination = data.get("pagination")
    records = data.get("results")
    try:
        if not isinstance(pagination, dict) or not isinstance(records, list):
            raise TypeError("pagination or results")
        if not all(isinstance(record, dict) and "id" in record for record in records):
            raise TypeError("a record without an id")
        return Page(
            records=records,
            row_count=_int(pagination, "row_count"),
            page_size=_int(pagination, "page_size"),
            current_page=_int(pagination, "current_page"),
            max_page=_int(pagination, "max_page"),
            filters=dict(filters),
        )
    except (TypeError, ValueError) as exc:
        raise ResponseError(f"{url} answered a malformed page ({exc})") from exc
