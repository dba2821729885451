"""Everything the client raises, as one tree (``ValueError``/``TypeError`` aside, which
mean the caller passed a wrong argument)::

    ClientError
    ├── TransportError            no usable answer: refused, reset, timed out, broken HTTP
    ├── ResponseError             an answer that is not the protocol's JSON (SPEC §5)
    ├── APIError                  the server refused the request (.status_code, .messages)
    │   ├── AuthenticationError   401  missing or wrong Bearer token
    │   ├── SignatureError        403  api_hash missing or wrong: check the api_key
    │   ├── InvalidRequestError   400  a bad filter or page; .messages are the server's
    │   ├── NotFoundError         404  no such call (annotate), or no such endpoint
    │   ├── RateLimitError        429  too many requests (retried, honouring Retry-After)
    │   └── ServerError           5xx  the server failed (500, 502, 503, 504 retried)
    ├── StateError                the sync state file is unreadable, busy or another pull's
    └── OutputError               the output cannot be written

Transport errors are retried too (``retryable``; see :mod:`cdrapi.client.retry`). httpx's
exceptions never escape: they are translated here, at the boundary, and kept as
``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "RETRY_STATUSES",
    "APIError",
    "AuthenticationError",
    "ClientError",
    "InvalidRequestError",
    "NotFoundError",
    "OutputError",
    "RateLimitError",
    "ResponseError",
    "ServerError",
    "SignatureError",
    "StateError",
    "TransportError",
    "api_error",
]


class ClientError(Exception):
    """Base of every error the cdrapi client raises."""

    retryable = False
    """Whether trying the same request again may succeed."""

    def add_detail(self, detail: str) -> None:
        """End the message with ``detail`` (what was tried, what is left as it was)."""
        self.args = (f"{self}{detail}", *self.args[1:])


class TransportError(ClientError):
    """No usable HTTP answer: connection refused or dropped, timeout, malformed HTTP."""

    retryable = True


class ResponseError(ClientError):
    """The server answered, but not with the JSON the protocol describes."""


class APIError(ClientError):
    """The server answered with an error status (and, usually, the vendor's envelope)."""

    def __init__(
        self,
        status_code: int,
        messages: Iterable[str],
        *,
        url: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.messages = list(messages)
        self.url = url
        self.retry_after = retry_after
        where = f" from {url}" if url else ""
        detail = "; ".join(self.messages) or "no message"
        super().__init__(f"HTTP {status_code}{where}: {detail}")


class AuthenticationError(APIError):
    """401: the Bearer token is missing or wrong."""


class SignatureError(APIError):
    """403: the server wants a valid ``api_hash``: the api_key is missing or wrong."""


class InvalidRequestError(APIError):
    """400: the server refused the page or a filter; ``messages`` say which and why."""


class NotFoundError(APIError):
    """404: no call matches (``annotate``), or the server has no such endpoint."""


class RateLimitError(APIError):
    """429: the server asks to slow down (``retry_after`` seconds, when it says)."""

    retryable = True


RETRY_STATUSES = frozenset({500, 502, 503, 504})
"""The 5xx statuses worth a retry: a failure of the moment (a restart, a store reconnecting,
a proxy with no upstream). 501, 505 and the like would fail the same way again."""


class ServerError(APIError):
    """5xx: the server failed to answer (retried when in ``RETRY_STATUSES``)."""

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status_code in RETRY_STATUSES


class StateError(ClientError):
    """The sync state file cannot be used: unreadable, in use, or made for another pull."""


class OutputError(ClientError):
    """The records cannot be written where asked."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: SignatureError,
    404: NotFoundError,
    429: RateLimitError,
}


def api_error(
    status_code: int, messages: Iterable[str], *, url: str = "", retry_after: float | None = None
) -> APIError:
    """The :class:`APIError` subclass for an HTTP status."""
    cls = _BY_STATUS.get(status_code) or (ServerError if status_code >= 500 else APIError)
    return cls(status_code, messages, url=url, retry_after=retry_after)
