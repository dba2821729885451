"""Call recordings over HTTP: ``/recordings/<path>`` under ``recordings_dir``.

A request needs the API's Bearer token, or a signed link that has not expired:
``?expires=<epoch>&signature=<hex>``, where the signature is HMAC-SHA256 of
``"<path>\\n<expires>"`` with ``recording_secret``. ``/recording-links/<path>`` (Bearer)
answers such a link, for a browser's ``<audio>`` that cannot send headers. Files are
served with HTTP Range support (seeking), and no path can leave ``recordings_dir``:
``..``, absolute paths and symlinks pointing outside are 404.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import time
from pathlib import Path
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from cdrapi.protocol.errors import ProtocolError
from cdrapi.protocol.request import check_bearer
from cdrapi.protocol.response import error_body
from cdrapi.settings import Settings

__all__ = ["confine", "recording_routes", "sign", "signed_path"]

_JSON = "application/json"
_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".gsm": "audio/x-gsm",
          ".opus": "audio/ogg", ".flac": "audio/flac", ".wav49": "audio/wav"}  # fmt: skip


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
    if any(part in ("..", "") for part in path.split("/")):
        return None
    try:
        base = root.resolve(strict=True)
        target = (base / path).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


def _error(status: int, message: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(error_body([message]), status_code=status, media_type=_JSON, headers=headers)


def recording_routes(settings: Settings) -> list[Route]:
    """The recording routes for ``settings`` (none without ``recordings_dir``)."""
    if not settings.recordings_dir:
        return []
    root = Path(settings.recordings_dir)
    tokens, secret = settings.tokens, settings.recording_secret

    def allowed(request: Request, path: str) -> Response | None:
        given = request.query_params.get("signature")
        if given is not None and secret:
            try:
                expires = int(request.query_params.get("expires", ""))
            except ValueError:
                return _error(403, "Invalid recording link")
            if not hmac.compare_digest(given.lower(), sign(secret, path, expires)):
                return _error(403, "Invalid recording link")
            if expires < time.time():
                return _error(403, "Recording link expired")
            return None
        try:
            check_bearer(request.headers.get("authorization"), tokens)
        except ProtocolError as exc:
            return _error(exc.status_code, exc.messages[0])
        return None

    async def recording(request: Request) -> Response:
        path = request.path_params["path"]
        denied = allowed(request, path)
        if denied is not None:
            return denied
        target = confine(root, path)
        if target is None:
            return _error(404, "Not found")
        kind = _TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0]
        return FileResponse(target, media_type=kind or "application/octet-stream")

    async def link(request: Request) -> Response:
        path = request.path_params["path"]
        try:
            check_bearer(request.headers.get("authorization"), tokens)
        except ProtocolError as exc:
            return _error(exc.status_code, exc.messages[0])
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
