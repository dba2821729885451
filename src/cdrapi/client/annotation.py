"""One ``POST /api/cdr/annotate`` exchange (cdrapi's own endpoint, not the vendor's),
shared by the sync and async clients' ``annotate()``.

The request is signed and sent as /api/cdr's are (:mod:`cdrapi.client.exchange`): PHP's
``http_build_query`` of ``{"call": {<selector>: <value>}, "set": {<field>: <value>},
"api_hash"}`` with ``Content-Type: text/xml``, or the same structure as JSON. A field
given as ``None`` is left out (left as it is on the server); ``""`` clears it. The answer
is a page of the records annotated, read by :func:`~cdrapi.client.exchange.read_page`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cdrapi.protocol.encoding import http_build_query
from cdrapi.protocol.signing import HASH_KEY, sign

__all__ = ["FIELDS", "SELECTORS", "annotate_url", "annotation_body"]

#: The fields an annotation may set.
FIELDS = ("customer_id", "external_id", "external_info", "comments")
#: What may name the call, one of them.
SELECTORS = ("id", "uniqueid", "linkedid")

_FORM_TYPE = "text/xml"
_JSON_TYPE = "application/json"


def annotate_url(endpoint: str) -> str:
    """The annotate URL next to an /api/cdr ``endpoint``."""
    return endpoint.rstrip("/") + "/annotate"


def annotation_body(
    call: Mapping[str, int | str | None],
    values: Mapping[str, str | None],
    api_key: str | None,
    *,
    json: bool = False,
) -> tuple[bytes, str]:
    """The body and Content-Type of an annotation of the call named by exactly one of
    ``call`` (``id``, ``uniqueid``, ``linkedid``; the others ``None``) setting ``values``
    (at least one not ``None``). Raises ``ValueError`` / ``TypeError`` for wrong arguments."""
    given = {name: value for name, value in call.items() if value is not None}
    if set(call) - set(SELECTORS) or len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(SELECTORS)}, not {sorted(given)}")
    ((name, value),) = given.items()
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise TypeError(f"{name} must be a non-empty str or an int, not {value!r}")
    fields = {field: text for field, text in values.items() if text is not None}
    if set(values) - set(FIELDS) or not fields:
        raise ValueError(f"give at least one of {', '.join(FIELDS)}")
    for field, text in fields.items():
        if not isinstance(text, str):
            raise TypeError(f"{field} must be a str or None, not {text!r}")
    params: dict[str, Any] = {"call": {name: value}, "set": fields}
    if api_key:
        params[HASH_KEY] = sign(params, api_key)
    if json:
        return orjson.dumps(params), _JSON_TYPE
    return http_build_query(params).encode("ascii"), _FORM_TYPE
