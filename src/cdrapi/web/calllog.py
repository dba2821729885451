"""The call log at ``/``: the search form and a page of calls, newest first.

A signed-in account's search (:mod:`cdrapi.web.searchform`) is narrowed to its scope
(:func:`~cdrapi.web.auth.scoped`) and read from the store
(:class:`~cdrapi.store.calllog.CallLog`), one row per call or, with ``view=legs``, per
leg. Paging is by key (``after``/``before``: the edge row's ``(time, id)``), with the
first pages by number and the last one. Without a session the page redirects to the
sign-in form, which comes back here.

The page works without JavaScript (a GET form, plain links). With htmx, the form's
changes and the paging links fetch only the results (``HX-Request``): the fragment
``_results.html``, whose field messages replace the form's out of band.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from cdrapi.settings import Settings
from cdrapi.store.calllog import NUMBERED, CallLog, Key, LogPage
from cdrapi.store.engine import StoreError
from cdrapi.store.executor import StoreExecutor
from cdrapi.web.auth import SIGN_IN_PATH, Account, current_account, scoped, templates
from cdrapi.web.searchform import (
    CHOICES,
    FLAGS,
    PICKERS,
    PRESETS,
    TEXTS_SHOWN,
    SearchForm,
    pickers,
    read_form,
)
from cdrapi.web.shown import pbx_now, zone_name

__all__ = ["calllog_routes", "form_context", "signed_in", "store_unavailable", "wants_fragment"]

_HEADERS = {"Cache-Control": "no-store", "Vary": "HX-Request"}
_ERROR_NAMES = (
    "date_between", "hour_between", "preset", *CHOICES, *PICKERS, *FLAGS, *TEXTS_SHOWN,
)  # fmt: skip
_UNAVAILABLE = "The call store cannot be read just now: try again in a moment."


def wants_fragment(request: Request) -> bool:
    """Whether htmx asks for the results alone (not a history restore: a whole page)."""
    headers = request.headers
    return headers.get("hx-request") == "true" and "hx-history-restore-request" not in headers


async def signed_in(request: Request) -> Account | Response:
    """The request's account, or the response to send instead: the sign-in form (which
    comes back to this URL) or, if the store cannot be read, a 503 page."""
    try:
        account = await asyncio.to_thread(current_account, request)
    except StoreError:
        return store_unavailable(request)
    if account is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = f"{SIGN_IN_PATH}?{urlencode({'next': here})}"
        headers = {"HX-Redirect": target} if wants_fragment(request) else None
        return RedirectResponse(target, 303, headers=headers)
    return account


def store_unavailable(request: Request) -> Response:
    context = {"title": "Unavailable", "message": _UNAVAILABLE}
    headers = {**_HEADERS, "Retry-After": "5"}
    return templates.TemplateResponse(request, "message.html", context, 503, headers)


def _scope_pickers(
    options: dict[str, list[tuple[str, str]]],
    directory: Mapping[str, list[dict[str, Any]]],
    account: Account,
) -> dict[str, list[tuple[str, str]]]:
    """Only the directory entries of the account's projects (and extensions)."""
    if account.is_admin:
        return options
    keep: dict[str, set[str]] = {}
    projects = set(account.project_ids)
    tables = {"project_id": "projects", "user_id": "users", "inbound_route_id": "inbound_routes"}
    for name, table in {**tables, "qname": "queues"}.items():
        rows = directory.get(table, [])
        if projects:
            key = "id" if table == "projects" else "project_id"
            rows = [row for row in rows if row.get(key) in projects]
        if account.extensions and table == "users":
            rows = [row for row in rows if row.get("extension") in account.extensions]
        keep[name] = {str(row["name"] if table == "queues" else row["id"]) for row in rows}
    return {name: [o for o in found if o[0] in keep[name]] for name, found in options.items()}


def form_context(
    request: Request,
    settings: Settings,
    form: SearchForm,
    directory: Mapping[str, list[dict[str, Any]]],
    account: Account,
) -> dict[str, Any]:
    """What the search form (_form.html) needs, on every page that shows it: its values
    and messages, the pickers of the account's own directory, the PBX's zone."""
    return {
        "form": form,
        "pickers": _scope_pickers(pickers(directory), directory, account),
        "picker_labels": PICKERS,
        "presets": PRESETS,
        "choices": CHOICES,
        "flags": FLAGS,
        "texts": TEXTS_SHOWN,
        "timezone": zone_name(settings.timezone),
        "fragment": wants_fragment(request),
        "error_names": _ERROR_NAMES,
        "more_open": any(
            form.values.get(name) or name in form.errors
            for name in TEXTS_SHOWN
            if name != "telephone_like"
        ),
    }


def _paging(form: SearchForm, result: LogPage) -> dict[str, Any]:
    """The links of the pager: numbered first pages, previous/next by key, the last."""
    numbered = [
        (n, form.query(page=str(n)), n == result.number)
        for n in range(1, min(NUMBERED, result.pages) + 1)
    ]
    return {
        "numbered": numbered,
        "first": form.query() if result.number > 1 else None,
        "previous": form.query(before=str(result.first), page=str(result.number - 1))
        if result.has_previous and result.first
        else None,
        "next": form.query(after=str(result.last), page=str(result.number + 1))
        if result.has_next and result.last
        else None,
        "last": form.query(last="1") if result.has_next else None,
    }


def _number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) < 10 else 1


def calllog_routes(settings: Settings, log: CallLog, database: StoreExecutor) -> list[Route]:
    """``GET /``: the call log for ``log``'s store, read on ``database``'s threads."""

    async def page(request: Request) -> Response:
        account = await signed_in(request)
        if isinstance(account, Response):
            return account
        params = request.query_params
        form = read_form(params, pbx_now(settings.timezone).date())
        try:
            directory = await database.run(log.directory)
            result = None
            if form.filters is not None:
                read = functools.partial(
                    log.page,
                    scoped(form.filters, account),
                    grouped=form.grouped,
                    number=_number(params.get("page")),
                    after=Key.parse(params.get("after") or ""),
                    before=Key.parse(params.get("before") or ""),
                    last=params.get("last") == "1",
                )
                result = await database.run(read)
        except StoreError:
            return store_unavailable(request)
        context = {
            **form_context(request, settings, form, directory, account),
            "result": result,
            "paging": _paging(form, result) if result is not None else None,
        }
        name = "_results.html" if context["fragment"] else "calllog.html"
        status = 400 if form.errors else 200
        return templates.TemplateResponse(request, name, context, status, _HEADERS)

    return [Route("/", page, methods=["GET", "HEAD"])]
