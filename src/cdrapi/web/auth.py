"""Who is signed in to the web call log, and which calls they may see.

- :class:`Account`: the signed-in web account and its scope.
- :func:`current_account`: the account of a request's session cookie, or ``None``.
- :func:`scoped`: a request's filters narrowed to what an account may see; every view,
  chart and export of the web pages runs its SQL on them.
- :func:`sign_in_routes`: ``GET``/``POST`` :data:`SIGN_IN_PATH` (the form) and ``POST``
  :data:`SIGN_OUT_PATH`, to mount in the app; :func:`current_account` finds the app's
  sessions through them, so they must be mounted wherever it is used.
- :data:`templates`: the Jinja2 templates (``templates/``; ``base.html`` is the layout
  every page extends), which give each page ``account`` and ``csrf_token``.

Cross-site requests are refused three ways: the session cookie is ``SameSite=Strict``
(:mod:`cdrapi.web.sessions`); every form of a signed-in page carries the session's
``csrf_token`` (check it with :func:`csrf_ok`; sign-out does); and a POST a browser marks
as coming from another site (``Sec-Fetch-Site``, or ``Origin`` on older browsers) is
refused (:func:`cross_site`). The sign-in form has no session to bind a token to (and
scripts may post ``username`` and ``password`` alone), so it relies on the last check.

Failed sign-ins are limited per username and per client address
(:class:`~cdrapi.web.ratelimit.FailureLimit`, in each worker's memory); the messages never
say whether an account exists.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from cdrapi.protocol.filters import CallFilters, ScopedCallFilters, narrow
from cdrapi.settings import Settings
from cdrapi.store.accounts import StoredAccount, sign_in
from cdrapi.store.engine import StoreError
from cdrapi.store.executor import StoreExecutor
from cdrapi.web.ratelimit import FailureLimit
from cdrapi.web.sessions import Sessions

__all__ = [
    "SIGN_IN_PATH",
    "SIGN_OUT_PATH",
    "TEMPLATES_DIR",
    "Account",
    "cross_site",
    "csrf_ok",
    "csrf_token",
    "current_account",
    "scoped",
    "sign_in_routes",
    "templates",
]

#: Where the sign-in form is and where signing out posts (issue 11's fixed interface).
SIGN_IN_PATH, SIGN_OUT_PATH = "/login", "/logout"
_OWN_PATHS = frozenset({SIGN_IN_PATH, SIGN_OUT_PATH})
TEMPLATES_DIR = Path(__file__).parent / "templates"

_MAX_FORM = 16 * 1024  # bytes: a sign-in form is a few hundred
_ACCOUNT = "cdrapi.account"
_NO_STORE = {"Cache-Control": "no-store"}
_UNAVAILABLE = "The call store cannot be read just now: try again in a moment."


@dataclass(frozen=True, slots=True)
class Account:
    """A signed-in web account. Its scope: the calls of ``project_ids`` and of
    ``extensions`` (both given: calls matching both); neither: every call (an admin)."""

    id: int
    username: str
    project_ids: tuple[int, ...]
    extensions: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return not self.project_ids and not self.extensions

    @classmethod
    def of(cls, stored: StoredAccount) -> Account:
        return cls(stored.id, stored.username, stored.project_ids, stored.extensions)


class _SignInRoute(Route):
    """A route of :func:`sign_in_routes`, carrying the app's :class:`Sessions`."""

    def __init__(self, path: str, endpoint: Any, methods: list[str], sessions: Sessions) -> None:
        super().__init__(path, endpoint, methods=methods)
        self.sessions = sessions


def _find(routes: list[BaseRoute]) -> Sessions | None:
    for route in routes:
        if isinstance(route, _SignInRoute):
            return route.sessions
        inner = getattr(route, "routes", None)  # a Mount's
        found = _find(inner) if inner else None
        if found is not None:
            return found
    return None


def _sessions(request: Request) -> Sessions:
    """The sessions of the request's app, found through its sign-in routes."""
    router = request.scope.get("router") or request.scope.get("app")
    found = _find(list(getattr(router, "routes", [])))
    if found is None:
        raise RuntimeError("mount cdrapi.web.auth.sign_in_routes(...) in the app first")
    return found


def current_account(request: Request) -> Account | None:
    """The account signed in with the request's session cookie: ``None`` without a valid
    cookie, or once its account was removed, disabled or given a new password.

    Reads one row of the store by primary key, on the calling thread, once per request;
    raises :class:`~cdrapi.store.engine.StoreError` if the store cannot be read.
    """
    scope = request.scope
    if _ACCOUNT not in scope:
        stored = _sessions(request).account(request)
        scope[_ACCOUNT] = None if stored is None else Account.of(stored)
    found: Account | None = scope[_ACCOUNT]
    return found


def csrf_token(request: Request) -> str:
    """The token the forms of the request's session must carry (``""`` signed out)."""
    session = _sessions(request).read(request)
    return "" if session is None else session.csrf_token


def csrf_ok(request: Request, token: object) -> bool:
    """Whether ``token`` (a form's ``csrf_token``) is the request's session's token."""
    expected = csrf_token(request)
    return bool(expected) and isinstance(token, str) and secrets.compare_digest(token, expected)


def cross_site(request: Request, public_url: str = "") -> bool:
    """Whether the browser says the request comes from another site: ``Sec-Fetch-Site``
    other than ``same-origin`` or ``none`` (typed, a bookmark), or, from browsers that do
    not send it, an ``Origin`` that is neither this server's nor ``public_url``'s. A
    request with neither header (a script) is not cross-site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    ours = {f"{request.url.scheme}://{request.url.netloc}"}
    if public_url:
        scheme, _, rest = public_url.partition("://")
        ours.add(f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}")
    return origin.lower() not in ours


def scoped(filters: CallFilters, account: Account) -> CallFilters:
    """``filters`` narrowed to the calls ``account`` may see, exactly as more filters
    would (counts, pages, aggregates and exports alike); an admin's stay as they are.

    ``filters`` is a :class:`CallFilters` or a :class:`ScopedCallFilters` (subclass that
    for filters of your own); a scope already set is never replaced (ValueError).
    """
    if account.is_admin:
        return filters
    given = filters if isinstance(filters, ScopedCallFilters) else ScopedCallFilters.of(filters)
    scope: dict[str, Any] = {}
    if account.project_ids:
        scope["project_scope"] = list(account.project_ids)
    if account.extensions:
        scope["extension_scope"] = list(account.extensions)
    return narrow(given, **scope)


def _context(request: Request) -> dict[str, Any]:
    """What ``base.html`` shows of the session: the account and the forms' token."""
    try:
        account = current_account(request)
    except StoreError:
        account = None
    return {"account": account, "csrf_token": csrf_token(request) if account else ""}


#: The web pages' templates; each page gets ``account`` and ``csrf_token``.
templates = Jinja2Templates(directory=str(TEMPLATES_DIR), context_processors=[_context])
templates.env.globals.update(sign_in_path=SIGN_IN_PATH, sign_out_path=SIGN_OUT_PATH)


def _next(value: object) -> str:
    """Where to go after signing in: a path of this site, else ``/``."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return "/"
    if any(char in value for char in "\\\r\n\t") or value.split("?")[0] in _OWN_PATHS:
        return "/"
    return value


def _page(request: Request, name: str, status: int, **context: Any) -> Response:
    """``name`` rendered with ``context`` (``headers``: the response's, besides no-store)."""
    headers = {**_NO_STORE, **context.pop("headers", {})}
    return templates.TemplateResponse(request, name, context, status, headers)


async def _form(request: Request) -> dict[str, str] | None:
    """The POSTed form's text fields; ``None`` if its size is not declared or too big."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > _MAX_FORM:
        return None
    form = await request.form(max_files=0, max_fields=20)
    return {key: value for key, value in form.items() if isinstance(value, str)}


def sign_in_routes(settings: Settings, database: StoreExecutor) -> list[BaseRoute]:
    """The sign-in form and sign-out, for ``settings`` and the app's store ``database``:
    ``Starlette(routes=[*sign_in_routes(settings, database), ...])``."""
    sessions = Sessions(settings, database)
    limit = FailureLimit(settings.web_signin_failures, settings.web_signin_window)
    public_url = settings.public_url

    def form(request: Request, status: int = 200, **context: Any) -> Response:
        defaults = {"message": "", "username": "", "next": "/", "refresh": ""}
        return _page(request, "signin.html", status, **{**defaults, **context})

    def refused(request: Request, status: int, message: str) -> Response:
        headers = {"Retry-After": "5"} if status == 503 else {}
        return _page(
            request, "message.html", status, title="Refused", message=message, headers=headers
        )

    async def show(request: Request) -> Response:
        target = _next(request.query_params.get("next"))
        try:
            signed_in = await asyncio.to_thread(current_account, request)
        except StoreError:
            return refused(request, 503, _UNAVAILABLE)
        if signed_in is not None:
            return RedirectResponse(target, 303, headers=_NO_STORE)
        # A link followed from another site comes without the SameSite=Strict cookie: one
        # reload from this page (same-site) sends it, and a signed-in user goes on.
        refresh = ""
        followed = request.headers.get("sec-fetch-site") == "cross-site"
        if followed and "again" not in request.query_params:
            refresh = f"{request.url.path}?{urlencode({'next': target, 'again': '1'})}"
        return form(request, next=target, refresh=refresh)

    async def submit(request: Request) -> Response:
        if cross_site(request, public_url):
            return refused(request, 403, "Sign-in from another site refused.")
        fields = await _form(request)
        if fields is None:
            return refused(request, 413, "The form is too big, or its size was not given.")
        username, password = fields.get("username", "").strip(), fields.get("password", "")
        target = _next(fields.get("next"))
        if not username or not password:
            message = "Enter your username and password."
            return form(request, 400, message=message, username=username, next=target)
        client = request.client.host if request.client else "unknown"
        keys = (f"user:{username.casefold()}", f"address:{client}")
        wait = limit.retry_after(*keys)
        if wait:
            minutes = max(1, round(wait / 60))
            message = f"Too many failed sign-ins. Try again in {minutes} minute(s)."
            headers = {"Retry-After": str(wait)}
            return form(
                request, 429, message=message, username=username, next=target, headers=headers
            )
        try:
            await asyncio.to_thread(sessions.serializer)  # the key may be read from the store
            account = await asyncio.to_thread(sign_in, sessions.engine, username, password)
        except StoreError:
            return refused(request, 503, _UNAVAILABLE)
        if account is None:
            limit.failed(*keys)
            message = "Wrong username or password."
            return form(request, 401, message=message, username=username, next=target)
        limit.forget(keys[0])
        response = RedirectResponse(target, 303, headers=_NO_STORE)
        sessions.set_cookie(response, request, sessions.issue(account))
        return response

    async def sign_out(request: Request) -> Response:
        if cross_site(request, public_url):
            return refused(request, 403, "Sign-out from another site refused.")
        fields = await _form(request)
        try:
            await asyncio.to_thread(sessions.serializer)
        except StoreError:
            return refused(request, 503, _UNAVAILABLE)
        token = (fields or {}).get("csrf_token")
        if sessions.read(request) is not None and not csrf_ok(request, token):
            message = "This page was out of date: reload it and sign out again."
            return refused(request, 403, message)
        response = RedirectResponse(SIGN_IN_PATH, 303, headers=_NO_STORE)
        sessions.clear_cookie(response, request)
        return response

    return [
        _SignInRoute(SIGN_IN_PATH, show, ["GET"], sessions),
        _SignInRoute(SIGN_IN_PATH, submit, ["POST"], sessions),
        _SignInRoute(SIGN_OUT_PATH, sign_out, ["POST"], sessions),
    ]
