"""The client side of /api/cdr: a Python SDK and the engine of ``cdrapi pull``.

It speaks the protocol of ``SPEC.md`` to any server that follows it (the vendor's PBX or
cdrapi's own) and depends on nothing of cdrapi's server: only the protocol's encoding,
signing and record layout.

- :class:`Client` / :class:`AsyncClient`: ``page()``, ``iter_pages()``,
  ``iter_records()``, ``sync(state)``, ``annotate()``; filters as keyword arguments with
  Python values.
- :func:`pull`: every matching call into JSONL, CSV, Parquet or a database, one-shot or
  incremental and resumable with a state file.
- :mod:`cdrapi.client.errors`: one exception tree, rooted at :class:`ClientError`.
"""

from cdrapi.client.client import AsyncClient, Client
from cdrapi.client.errors import (
    APIError,
    AuthenticationError,
    ClientError,
    InvalidRequestError,
    NotFoundError,
    OutputError,
    RateLimitError,
    ResponseError,
    ServerError,
    SignatureError,
    StateError,
    TransportError,
)
from cdrapi.client.exchange import Page, Record
from cdrapi.client.pull import PullResult, apull, pull
from cdrapi.client.retry import Retry
from cdrapi.client.state import SyncState

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ClientError",
    "InvalidRequestError",
    "NotFoundError",
    "OutputError",
    "Page",
    "PullResult",
    "RateLimitError",
    "Record",
    "ResponseError",
    "Retry",
    "ServerError",
    "SignatureError",
    "StateError",
    "SyncState",
    "TransportError",
    "apull",
    "pull",
]
