"""Browser sessions: a signed cookie naming an account, and the checks it must pass.

The cookie (:data:`COOKIE`) holds, signed with itsdangerous' ``URLSafeTimedSerializer``
and timestamped, the account's id, its session generation and a random token for the
forms of that session (CSRF, see :mod:`cdrapi.web.auth`). It is ``HttpOnly``,
``SameSite=Strict``, ``Path=/``, ``Secure`` when the request came over https (or
``CDRAPI_PUBLIC_URL`` is https), and lasts ``CDRAPI_WEB_SESSION_MAX_AGE`` seconds: the
browser forgets it then, and the signature's timestamp refuses it then even if kept.

A cookie is worth an account only while that account exists, is not disabled and still
has the generation the cookie carries: changing the password or disabling the account
raises the generation (:mod:`cdrapi.store.accounts`), which ends every session signed in
before. Nothing else is kept on the server, so sessions survive a restart and are shared
by every worker.

The signing key is ``CDRAPI_WEB_SECRET`` or, when that is unset, one generated the first
time it is needed and kept in the store (``web_keys``), so that every worker and every
restart uses the same one. Deleting that row (or changing the setting) ends every session.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from cdrapi.settings import Settings
from cdrapi.store.accounts import StoredAccount, get_account_by_id, web_key
from cdrapi.store.executor import StoreExecutor

__all__ = ["COOKIE", "Session", "Sessions"]

#: The session cookie's name.
COOKIE = "cdrapi_session"
_SALT = "cdrapi.web.session"
_KEY_NAME = "session"


@dataclass(frozen=True, slots=True)
class Session:
    """What a valid cookie says: whose session it is, and the token of its forms."""

    account_id: int
    generation: int
    csrf_token: str


class Sessions:
    """The sessions of one app: signing, reading and checking the cookie."""

    def __init__(self, settings: Settings, database: StoreExecutor) -> None:
        self.database = database
        self.engine = database.engine
        self.max_age = settings.web_session_max_age
        self._secret = settings.web_secret
        self._https = settings.public_url.lower().startswith("https://")
        self._serializer: URLSafeTimedSerializer | None = None
        self._lock = threading.Lock()

    def serializer(self) -> URLSafeTimedSerializer:
        """The signer; the first call may read (or make) the key in the store."""
        if self._serializer is None:
            with self._lock:
                if self._serializer is None:
                    secret = self._secret or web_key(self.engine, _KEY_NAME)
                    self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        return self._serializer

    def issue(self, account: StoredAccount) -> str:
        """A new cookie value for ``account``, with a new form token."""
        payload = {"a": account.id, "g": account.generation, "c": secrets.token_urlsafe(24)}
        return str(self.serializer().dumps(payload))

    def read(self, request: Request) -> Session | None:
        """The session the request's cookie names if its signature holds and it is not too
        old (the account is not checked: :meth:`account`). Cached on the request."""
        scope = request.scope
        if "cdrapi.session" not in scope:
            scope["cdrapi.session"] = self._read(request.cookies.get(COOKIE))
        found: Session | None = scope["cdrapi.session"]
        return found

    def _read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            payload: Any = self.serializer().loads(cookie, max_age=self.max_age)
        except BadSignature:  # tampered, signed with another key, or expired
            return None
        if not isinstance(payload, dict):
            return None
        account_id, generation, token = payload.get("a"), payload.get("g"), payload.get("c")
        if not (isinstance(account_id, int) and isinstance(generation, int)):
            return None
        if not isinstance(token, str) or not token:
            return None
        return Session(account_id, generation, token)

    def account(self, request: Request) -> StoredAccount | None:
        """The signed-in account: the cookie's, if it still exists, is enabled and has the
        cookie's generation. Reads the store (one row by primary key)."""
        session = self.read(request)
        if session is None:
            return None
        stored = get_account_by_id(self.engine, session.account_id)
        if stored is None or stored.disabled or stored.generation != session.generation:
            return None
        return stored

    def secure(self, request: Request) -> bool:
        """Whether the cookie gets ``Secure``: the request came over https."""
        return self._https or request.url.scheme == "https"

    def set_cookie(self, response: Response, request: Request, value: str) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age,
            path="/",
            secure=self.secure(request),
            httponly=True,
            samesite="strict",
        )

    def clear_cookie(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            COOKIE, path="/", secure=self.secure(request), httponly=True, samesite="strict"
        )
