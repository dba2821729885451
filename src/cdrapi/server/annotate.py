"""``POST /api/cdr/annotate``: a CRM sets ``customer_id``, ``external_id``,
``external_info`` and ``comments`` on the records of one call.

cdrapi's own endpoint, read and refused as ``/api/cdr`` is: the same Bearer tokens (401),
the same ``api_hash`` signing when an api_key is configured (403), the body a PHP form
string whatever its Content-Type, JSON, or multipart (:func:`~cdrapi.protocol.request.read_params`),
and every failure the vendor's error envelope. The parameters::

    call[id]=41 | call[uniqueid]=1710000000.5 | call[linkedid]=1710000000.5   (exactly one)
    set[customer_id]=C-1001&set[comments]=Called+back                         (at least one)
    api_hash=md5(http_build_query(every other parameter) . api_key)

A value of ``set`` that is ``""`` clears the field; ``null`` (JSON) leaves it as it is,
as ``http_build_query`` leaves it out of what is signed. Other top-level keys are
ignored (and signed), as on /api/cdr. The body is at most :data:`MAX_BODY` bytes (413).

The answer is a /api/cdr page holding the records annotated, as /api/cdr now serves them
(all on page 1: one call has at most :data:`~cdrapi.store.annotations.MAX_RECORDS` of
them). No record of that call, or none a scoped token sees: 404, the same answer for both,
found in a read: it takes no write lock, so it does not wait for an import's transaction.
Each field written is audited under the token's name in the configuration
(``api_token #1``, ``[[tokens]] #2``; never the token): :mod:`cdrapi.store.annotations`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from cdrapi.protocol.errors import (
    InvalidRequest,
    PayloadTooLarge,
    ProtocolError,
    SignatureError,
)
from cdrapi.protocol.filters import CallFilters, ScopedCallFilters, narrow
from cdrapi.protocol.request import check_bearer, read_params
from cdrapi.protocol.response import error_body, page_body
from cdrapi.protocol.signing import verify
from cdrapi.protocol.values import show
from cdrapi.settings import Settings
from cdrapi.store.annotations import (
    FIELDS,
    MAX_RECORDS,
    SELECTORS,
    InvalidValue,
    annotate,
    check_value,
)
from cdrapi.store.engine import StoreError
from cdrapi.store.executor import StoreExecutor

__all__ = ["MAX_BODY", "PATH", "annotate_routes", "identities", "read_annotation"]

log = logging.getLogger("cdrapi.server")

PATH = "/api/cdr/annotate"
#: The largest body accepted: every field at its limit, each character percent-encoded
#: UTF-8 (or a JSON surrogate pair), fits.
MAX_BODY = 128 * 1024

_JSON = "application/json"
_UNAVAILABLE = "Service unavailable: the call store cannot be read"
_RETRY_AFTER = {"Retry-After": "5"}
_SELECTOR_LIMIT = 150  # uniqueid and linkedid columns
_ONE_OF = ", ".join(SELECTORS)
_SOME_OF = ", ".join(FIELDS)

Annotation = tuple[str, str | int, dict[str, str | None]]


def identities(settings: Settings) -> dict[str, str]:
    """Each configured token -> the name its annotations are audited under: its place in
    the configuration (``api_token #1``, ``[[tokens]] #2``), never the token itself."""
    names = {token: f"api_token #{n}" for n, token in enumerate(settings.tokens, 1)}
    for n, scope in enumerate(settings.scoped_tokens, 1):
        names[scope.token] = f"[[tokens]] #{n}"
    return names


def _text(value: Any) -> str | None:
    """A value as text (a JSON integer as its digits), or ``None`` when it is no text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _selector(name: str, value: Any) -> str | int:
    text = _text(value)
    if name == "id":
        if text is None or not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
            raise InvalidValue("expected a positive integer")
        return int(text)
    if text is None:
        raise InvalidValue("expected text")
    if len(text) > _SELECTOR_LIMIT or not text.isprintable():
        raise InvalidValue(f"expected at most {_SELECTOR_LIMIT} printable characters")
    return text


def _call(raw: Any, messages: list[str]) -> tuple[str, str | int] | None:
    if raw is None or raw == "" or raw == [] or raw == {}:
        messages.append(f"Missing call: give one of {_ONE_OF}")
        return None
    if not isinstance(raw, dict):
        messages.append(f"Invalid call: {show(raw)} (expected a map with one of {_ONE_OF})")
        return None
    chosen: list[tuple[str, str | int]] = []
    unknown = [name for name in raw if name not in SELECTORS]
    for name, value in raw.items():
        if name not in SELECTORS:
            messages.append(f"Invalid selector: {name}")
        elif value is not None and value != "":
            try:
                chosen.append((name, _selector(name, value)))
            except InvalidValue as exc:
                messages.append(f"Invalid {name}: {show(value)} ({exc})")
    given = [name for name, value in raw.items() if name in SELECTORS and value not in (None, "")]
    if len(given) > 1 or not (given or unknown):
        found = f" (got {', '.join(given)})" if given else ""
        messages.append(f"Invalid call: give exactly one of {_ONE_OF}{found}")
        return None
    return chosen[0] if chosen and not unknown else None


def _fields(raw: Any, messages: list[str]) -> dict[str, str | None]:
    if raw is None or raw == "" or raw == [] or raw == {}:
        raw = {}
    if not isinstance(raw, dict):
        messages.append(f"Invalid set: {show(raw)} (expected a map of fields to values)")
        return {}
    values: dict[str, str | None] = {}
    for name, value in raw.items():
        if name not in FIELDS:
            messages.append(f"Invalid field: {name}")
        elif value is not None:
            text = _text(value)
            try:
                if text is None:
                    raise InvalidValue(f"{show(value)} is not text")
                values[name] = check_value(name, text)
            except InvalidValue as exc:
                messages.append(f"Invalid {name}: {exc}")
    if not values and not messages:
        messages.append(f"Missing set: give at least one of {_SOME_OF}")
    return values


def read_annotation(params: Mapping[Any, Any]) -> Annotation:
    """The request's selector (``id``, ``uniqueid`` or ``linkedid``), its value and the
    fields to set; raise :class:`InvalidRequest` listing every problem."""
    messages: list[str] = []
    call = _call(params.get("call"), messages)
    values = _fields(params.get("set"), messages)
    if messages or call is None:
        raise InvalidRequest(messages or [f"Missing call: give one of {_ONE_OF}"])
    return call[0], call[1], values


async def _body(request: Request) -> bytes:
    """The request's body, refused (413) as soon as it is over :data:`MAX_BODY`."""
    declared = request.headers.get("content-length", "")
    too_large = PayloadTooLarge(f"Request body too large: the limit is {MAX_BODY} bytes")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, messages: list[str], headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(messages), status_code=status, media_type=_JSON, headers=headers)


def annotate_routes(
    settings: Settings,
    engine: Engine,
    database: StoreExecutor,
    scopes: Mapping[str, Mapping[str, list[Any]]],
) -> list[Route]:
    """The annotate route for the app of ``settings``; ``scopes`` maps each scoped token to
    the server-only filters its answers are narrowed with (as /api/cdr's)."""
    names = identities(settings)
    tokens = list(names)
    narrowed: dict[str, CallFilters] = {
        token: narrow(ScopedCallFilters(), **scope) for token, scope in scopes.items()
    }
    api_key = settings.api_key

    async def endpoint(request: Request) -> Response:
        try:
            token = check_bearer(request.headers.get("authorization"), tokens)
            content_type = request.headers.get("content-type", "")
            query_string = request.scope.get("query_string", b"")
            params = read_params(await _body(request), content_type, query_string)
            if api_key and not verify(params, api_key):
                raise SignatureError("Invalid api_hash")
            selector, key, values = read_annotation(params)
            scope = narrowed.get(token)
            done = await database.run(annotate, engine, selector, key, values, names[token], scope)
        except ProtocolError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
            return _error(exc.status_code, exc.messages, headers)
        except StoreError as exc:
            log.warning("%s: %s (%s)", PATH, exc, exc.__cause__)
            return _error(503, [_UNAVAILABLE], _RETRY_AFTER)
        except ClientDisconnect:  # gone before its body arrived: nobody reads this answer
            return Response(status_code=400)
        if not done.matched:
            return _error(404, [f"Not found: no call with {selector} {key}"])
        if not done.rows:
            return _error(
                400,
                [
                    f"Too many records: {selector} {key} has more than {MAX_RECORDS}; "
                    "annotate them by id"
                ],
            )
        return Response(page_body(len(done.rows), 1, done.rows), media_type=_JSON)

    return [Route(PATH, endpoint, methods=["POST"])]
