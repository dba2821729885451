"""Call recordings over HTTP: ``/recordings/<path>`` under ``recordings_dir``.

A request needs the API's Bearer token, or a signed link that has not expired:
``?expires=<epoch>&signature=<hex>``, where the signature is HMAC-SHA256 of
``"<path>\\n<expires>"`` with ``recording_secret``. ``/recording-links/<path>`` (Bearer)
answers such a link, for a browser's ``<audio>`` that cannot send headers. A link whose
``expires`` is not a plain number or whose ``signature`` is not 64 hex digits is refused
before any comparison (``hmac.compare_digest`` raised on non-ASCII text: a 500 without a
token). Files are served with HTTP Range support (seeking, :mod:`cdrapi.server.ranges`),
and no path can leave ``recordings_dir``: ``..``, absolute paths and symlinks pointing
outside are 404, and so is any file or directory whose name starts with a dot.

A scoped API token (``[[tokens]]``, :class:`~cdrapi.settings.TokenScope`) gets, on both
routes, only the recordings of its calls: a call in its scope must name the path as its
``recording_file`` or one of its ``monitor_files`` (a store query,
:func:`cdrapi.store.recordings.recorded_by`); any other path is answered exactly as a
file that does not exist (404 ``Not found``), so a scope learns nothing of other calls.
The tokens of ``api_token`` see every recording. The query runs on the app's store
threads when :func:`recording_routes` is given them, else on an engine of its own made
at the first such request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import mimetypes
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cdrapi.protocol.errors import ProtocolError
from cdrapi.protocol.filters import CallFilters, ScopedCallFilters, narrow
from cdrapi.protocol.request import check_bearer
from cdrapi.protocol.response import error_body
from cdrapi.server.ranges import RangedFile, RangeNotSatisfiable, parse_range
from cdrapi.settings import Settings, TokenScope
from cdrapi.store.engine import StoreError, connect
from cdrapi.store.executor import StoreExecutor
from cdrapi.store.recordings import recorded_by

__all__ = ["confine", "recording_routes", "sign", "signed_path"]

_JSON = "application/json"
_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".gsm": "audio/x-gsm",
          ".opus": "audio/ogg", ".flac": "audio/flac", ".wav49": "audio/wav"}  # fmt: skip
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_EXPIRES = re.compile(r"[0-9]{1,12}")
_UNAVAILABLE = "Service unavailable: the call store cannot be read"


def sign(secret: str, path: str, expires: int) -> str:
    """The signature of a link to ``path`` valid until ``expires`` (epoch seconds)."""
    message = f"{path}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_path(secret: str, path: str, ttl: int, now: float | None = None) -> str:
    """``/recordings/<path>?expires=...&signature=...`` valid for ``ttl`` seconds."""
    expires = int(now if now is not None else time.time()) + ttl
    return f"/recordings/{quote(path)}?expires={expires}&signature={sign(secret, path, expires)}"


def confine(root: Path, path: str) -> Path | None:
    """The file ``path`` names under ``root``, or ``None`` if it is not a file there."""
    if not path or "\x00" in path or path.startswith("/") or "\\" in path:
        return None
    if any(part[:1] in (".", "") for part in path.split("/")):  # "..", "", dotfiles
        return None
    try:
        base = root.resolve(strict=True)
        target = (base / path).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    if any(part.startswith(".") for part in target.relative_to(base).parts):
        return None  # a symlink to a dotfile
    return target


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return Response(error_body([message]), status_code=status, media_type=_JSON, headers=headers)


def _file(request: Request, target: Path) -> Response:
    """``target``, whole or the byte ranges asked (416 if none of them is in the file)."""
    kind = _TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0]
    try:
        stat = target.stat()
    except OSError:
        return _error(404, "Not found")
    response = RangedFile(target, stat, kind or "application/octet-stream", None)
    asked = request.headers.get("range")
    if asked is None:
        return response
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range not in (
        response.headers["etag"],
        response.headers["last-modified"],
    ):
        return response  # the file changed since the client's copy: all of it
    try:
        response.ranges = parse_range(asked, stat.st_size)
    except RangeNotSatisfiable:
        headers = {"Content-Range": f"bytes */{stat.st_size}"}
        return _error(416, f"Range not satisfiable: the file has {stat.st_size} bytes", headers)
    return response


def _scope_filters(scope: TokenScope) -> CallFilters:
    given: dict[str, Any] = {}
    if scope.projects:
        given["project_scope"] = list(scope.projects)
    if scope.extensions:
        given["extension_scope"] = list(scope.extensions)
    return narrow(ScopedCallFilters(), **given)


class _Owners:
    """Whether a token may have a recording: every one for a full token; for a scoped
    token, those a call in its scope names (read on the store's threads)."""

    def __init__(self, settings: Settings, database: StoreExecutor | None) -> None:
        self.scopes = {scope.token: _scope_filters(scope) for scope in settings.scoped_tokens}
        self.database = database
        self._db = settings.db
        self._own: StoreExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> StoreExecutor:
        if self.database is not None:
            return self.database
        with self._lock:
            if self._own is None:
                self._own = StoreExecutor(connect(self._db, create=False))
            return self._own

    async def allow(self, token: str, path: str) -> bool:
        filters = self.scopes.get(token)
        if filters is None:
            return True
        database = await asyncio.to_thread(self._executor)
        return await database.run(recorded_by, database.engine, path, filters)


def recording_routes(settings: Settings, database: StoreExecutor | None = None) -> list[Route]:
    """The recording routes for ``settings`` (none without ``recordings_dir``); a scoped
    token's checks run on ``database`` (the app's store threads) if given."""
    if not settings.recordings_dir:
        return []
    root = Path(settings.recordings_dir)
    owners = _Owners(settings, database)
    tokens, secret = [*settings.tokens, *owners.scopes], settings.recording_secret

    async def bearer(request: Request, path: str) -> Response | None:
        """``None`` if the request's Bearer token may have ``path``, else the answer."""
        try:
            token = check_bearer(request.headers.get("authorization"), tokens)
        except ProtocolError as exc:
            return _error(exc.status_code, exc.messages[0])
        try:
            if not await owners.allow(token, path):
                return _error(404, "Not found")  # as a file that does not exist
        except StoreError:
            return _error(503, _UNAVAILABLE, {"Retry-After": "5"})
        return None

    async def allowed(request: Request, path: str) -> Response | None:
        given = request.query_params.get("signature")
        if given is not None and secret:
            stamp = request.query_params.get("expires", "")
            if not (_SIGNATURE.fullmatch(given) and _EXPIRES.fullmatch(stamp)):
                return _error(403, "Invalid recording link")
            expires = int(stamp)
            expected = sign(secret, path, expires).encode("ascii")
            if not hmac.compare_digest(given.lower().encode("ascii"), expected):
                return _error(403, "Invalid recording link")
            if expires < time.time():
                return _error(403, "Recording link expired")
            return None
        return await bearer(request, path)

    async def recording(request: Request) -> Response:
        path = request.path_params["path"]
        denied = await allowed(request, path)
        if denied is not None:
            return denied
        target = confine(root, path)
        if target is None:
            return _error(404, "Not found")
        return _file(request, target)

    async def link(request: Request) -> Response:
        path = request.path_params["path"]
        denied = await bearer(request, path)
        if denied is not None:
            return denied
        if not secret:
            return _error(404, "Signed links are off: set recording_secret")
        if confine(root, path) is None:
            return _error(404, "Not found")
        now = time.time()
        body = {
            "url": settings.public_url.rstrip("/")
            + signed_path(secret, path, settings.recording_link_ttl, now),
            "expires": int(now) + settings.recording_link_ttl,
        }
        return Response(orjson.dumps(body), media_type=_JSON)

    return [
        Route("/recordings/{path:path}", recording, methods=["GET", "HEAD"]),
        Route("/recording-links/{path:path}", link, methods=["GET"]),
    ]
