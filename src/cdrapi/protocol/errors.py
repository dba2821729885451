"""Errors of the /api/cdr protocol, each carrying the HTTP status and the messages the
vendor envelope reports (SPEC §5)::

    ProtocolError
    ├── AuthenticationError      401  missing or wrong Bearer token
    ├── SignatureError           403  api_hash missing or wrong
    ├── PayloadTooLarge          413  body over the limit
    └── InvalidRequest           400  unreadable body, limits, bad page or filters
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AuthenticationError",
    "InvalidRequest",
    "PayloadTooLarge",
    "ProtocolError",
    "SignatureError",
]


class ProtocolError(Exception):
    """A request the API refuses; ``messages`` go into the error envelope."""

    status_code = 400

    def __init__(self, messages: str | Iterable[str]) -> None:
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("; ".join(self.messages))


class AuthenticationError(ProtocolError):
    status_code = 401


class SignatureError(ProtocolError):
    status_code = 403


class PayloadTooLarge(ProtocolError):
    status_code = 413


class InvalidRequest(ProtocolError):
    status_code = 400
