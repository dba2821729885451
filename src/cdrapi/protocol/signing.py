"""Request signing, as the vendor's PHP does it.

The vendor page signs a request with::

    $params['api_hash'] = md5(http_build_query($params) . 'your_api_key');

so the server checks ``api_hash`` against the md5 (lower-case hex) of PHP's
``http_build_query`` of every *other* top-level parameter, in their order,
followed by the API key. Only the top-level ``api_hash`` key is left out; a
nested one is signed like any other value. The same rule covers JSON requests:
the decoded structure is encoded with :func:`~cdrapi.protocol.encoding.http_build_query`.

The comparison is case-insensitive and constant-time. MD5 is fixed by the
protocol; it cannot be upgraded here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from cdrapi.protocol.encoding import PhpArray, http_build_query

__all__ = ["HASH_KEY", "sign", "verify"]

HASH_KEY = "api_hash"


def _without_hash(params: PhpArray) -> PhpArray:
    if isinstance(params, Mapping) and HASH_KEY in params:
        return {key: value for key, value in params.items() if key != HASH_KEY}
    return params


def sign(params: PhpArray, api_key: str) -> str:
    """``md5(http_build_query(params without "api_hash") . api_key)``, lower-case hex."""
    query = http_build_query(_without_hash(params))
    payload = query.encode("ascii") + api_key.encode("utf-8", "surrogateescape")
    # MD5 is what the protocol prescribes; usedforsecurity=False keeps it
    # available on FIPS-restricted builds.
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


def verify(params: PhpArray, api_key: str) -> bool:
    """True when ``params["api_hash"]`` is a string equal to :func:`sign` (any case)."""
    if not isinstance(params, Mapping):
        return False
    fields: Mapping[Any, Any] = params
    provided = fields.get(HASH_KEY)
    if not isinstance(provided, str):
        return False
    # bytes.lower() only folds ASCII; anything non-ASCII can never match hex.
    given = provided.encode("utf-8", "replace").lower()
    return hmac.compare_digest(given, sign(params, api_key).encode("ascii"))
