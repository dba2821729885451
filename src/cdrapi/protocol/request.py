"""Reading an /api/cdr request (SPEC §2-3): where the parameters are, and who sent them.

No web framework here: the server hands :func:`read_params` the body's bytes, the
Content-Type and the query string, and :func:`check_bearer` the Authorization header.

- GET: the query string, read as PHP's ``parse_str`` (the server hands an empty body).
- POST: a JSON body (it starts with ``{`` or says ``application/json``); a multipart form
  (:mod:`cdrapi.protocol.multipart`); otherwise the body is a PHP form string *whatever
  its Content-Type* (the vendor's clients send ``text/xml``). An empty body falls back to
  the query string.

Limits, each answered with the vendor envelope: bodies over 1 MiB (413; the server applies
:func:`check_body_size` as the body arrives), nesting deeper than 16 levels, arrays over
1,000 items and text that is not UTF-8 (400).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote_plus

from cdrapi.protocol.encoding import parse_str
from cdrapi.protocol.errors import AuthenticationError, InvalidRequest, PayloadTooLarge
from cdrapi.protocol.multipart import MultipartError, form_fields

__all__ = ["MAX_BODY", "MAX_DEPTH", "MAX_ITEMS", "check_bearer", "check_body_size", "read_params"]

MAX_BODY = 1 << 20
MAX_DEPTH = 16
MAX_ITEMS = 1000
_INT64 = 2**63


def check_bearer(authorization: str | None, tokens: Iterable[str]) -> str:
    """Accept ``Authorization: Bearer <token>`` for any configured token; the token it
    matched. Every token is compared, in constant time, whichever matches."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    given_bytes = given.strip().encode()
    matched: str | None = None
    for token in tokens:
        if hmac.compare_digest(given_bytes, token.encode()) and matched is None:
            matched = token
    if scheme.lower() != "bearer" or not given_bytes or matched is None:
        raise AuthenticationError(
            "Unauthorized: a valid 'Authorization: Bearer <token>' is required"
        )
    return matched


def check_body_size(size: int) -> None:
    """Raise :class:`PayloadTooLarge` if a body of ``size`` bytes is over the limit."""
    if size > MAX_BODY:
        raise PayloadTooLarge(f"Request body too large: the limit is {MAX_BODY} bytes")


def read_params(body: bytes, content_type: str = "", query: bytes = b"") -> dict[Any, Any]:
    """The request's parameters as one nested structure, checked against the limits.

    ``body`` is the request's body (empty for GET and HEAD), ``content_type`` its
    Content-Type header as sent (a multipart boundary is case-sensitive), ``query`` the
    raw query string, which is read when the body is empty or only white space.
    """
    check_body_size(len(body))
    if not body.strip():
        params = _form(query)
    else:
        kind = content_type.lower()
        if kind.startswith("multipart/form-data"):
            params = _multipart(body, content_type)
        elif body.lstrip()[:1] == b"{" or kind.startswith("application/json"):
            params = _json(body)
        else:
            params = _form(body)
    _check(params, 1)
    return params


def _form(data: bytes) -> dict[Any, Any]:
    # PHP silently drops variables nested deeper than its own limit; refuse them instead.
    for pair in data.split(b"&"):
        name = pair.partition(b"=")[0]
        if name.count(b"[") + name.upper().count(b"%5B") >= MAX_DEPTH:
            raise InvalidRequest(f"Invalid request: nesting deeper than {MAX_DEPTH} levels")
    return parse_str(data.decode("utf-8", "surrogateescape"))


def _json_int(text: str) -> int | float:
    # json_decode turns integers outside int64 into floats.
    value = int(text)
    return value if -_INT64 <= value < _INT64 else float(value)


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json(body: bytes) -> dict[Any, Any]:
    try:
        value = json.loads(body.decode("utf-8"), parse_int=_json_int, parse_constant=_json_constant)
    except UnicodeDecodeError as exc:
        raise InvalidRequest("Invalid JSON: the body is not valid UTF-8") from exc
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"Invalid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("Invalid JSON: the body must be an object")
    return value


def _multipart(body: bytes, content_type: str) -> dict[Any, Any]:
    try:
        fields = form_fields(body, content_type)
    except MultipartError as exc:
        raise InvalidRequest(f"Invalid multipart body: {exc}") from exc

    # The fields are registered exactly as PHP registers form variables.
    def encode(text: str) -> str:
        return quote_plus(text, errors="surrogateescape")

    return parse_str("&".join(f"{encode(name)}={encode(value)}" for name, value in fields))


def _check(value: Any, depth: int) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidRequest("Invalid request: text is not valid UTF-8") from exc
        return
    if not isinstance(value, dict | list):
        return
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"Invalid request: nesting deeper than {MAX_DEPTH} levels")
    if len(value) > MAX_ITEMS:
        raise InvalidRequest(f"Invalid request: more than {MAX_ITEMS} items in one array")
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        _check(key, depth)
        _check(item, depth + 1)
