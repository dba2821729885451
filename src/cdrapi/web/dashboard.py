"""The dashboard at ``/dashboard``: the figures of a search, as charts and tables.

The search is the call log's (:mod:`cdrapi.web.searchform`: the same form, the same
query string, so a link between the two pages keeps it), narrowed to the account's scope
(:func:`~cdrapi.web.auth.scoped`) and read by
:class:`~cdrapi.store.dashboard.DashboardReader`. Without a date (or preset) the
dashboard shows the last :data:`DEFAULT_DAYS` days, in the PBX's zone, as the form then
says. Without a session the page redirects to the sign-in form, which comes back here.

Every figure is an HTML table, so the page is complete without JavaScript; the charts
(uPlot, shipped in ``static/``) are drawn by ``static/dashboard.js`` from the same
figures, embedded in the page as JSON. With htmx, the form's changes fetch the figures
alone (``#results``), as on the call log.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from typing import Any

from markupsafe import Markup
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cdrapi.settings import Settings
from cdrapi.store.calllog import CallLog
from cdrapi.store.dashboard import Dashboard, DashboardReader
from cdrapi.store.engine import StoreError
from cdrapi.store.executor import StoreExecutor
from cdrapi.web.auth import scoped, templates
from cdrapi.web.calllog import form_context, signed_in, store_unavailable
from cdrapi.web.searchform import read_form
from cdrapi.web.shown import pbx_now

__all__ = ["DEFAULT_DAYS", "chart_data", "dashboard_routes", "for_dashboard", "waited"]

#: The period shown when the search names no date.
DEFAULT_DAYS = 30
PATH = "/dashboard"
_HEADERS = {"Cache-Control": "no-store", "Vary": "HX-Request"}
#: The call log's form, pointed at the dashboard (its action, htmx request, preset and
#: clear links).
_RETARGET = (
    (' action="/"', f' action="{PATH}"'),
    (' hx-get="/"', f' hx-get="{PATH}"'),
    ('href="/?', f'href="{PATH}?'),
    ('<a href="/">Clear</a>', f'<a href="{PATH}">Clear</a>'),
)


def for_dashboard(html: str) -> Markup:
    """The call log's search form (``_form.html``, rendered) submitting to the dashboard."""
    text = str(html)  # not Markup's replace, which would escape the new text
    for old, new in _RETARGET:
        text = text.replace(old, new)
    return Markup(text)  # the rendered (escaped) form of a template


def waited(seconds: int) -> str:
    """How long a missed call has waited, in words: ``12 min``, ``3 h 05 min``, ``2 d 4 h``."""
    minutes, hours = seconds // 60, seconds // 3600
    if seconds < 60:
        return "under a minute"
    if hours < 1:
        return f"{minutes} min"
    if hours < 48:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{hours // 24} d {hours % 24} h"


templates.env.filters.update(for_dashboard=for_dashboard, waited=waited)


def _with_default_dates(params: QueryParams, today: dt.date) -> QueryParams:
    """``params``, with the last :data:`DEFAULT_DAYS` days when they name no date."""
    if any(params.get(name) for name in ("from", "to", "preset")):
        return params
    start = today - dt.timedelta(days=DEFAULT_DAYS - 1)
    pairs = [(k, v) for k, v in params.multi_items() if k not in ("from", "to", "preset")]
    return QueryParams([*pairs, ("from", start.isoformat()), ("to", today.isoformat())])


def _epoch(bucket: str) -> int:
    """A bucket's start as seconds since 1970 of its wall time read as UTC: the charts
    then label it as the PBX's clock shows it, whatever the browser's zone."""
    pattern = "%Y-%m-%d %H" if len(bucket) > 10 else "%Y-%m-%d"
    return calendar.timegm(dt.datetime.strptime(bucket, pattern).timetuple())


def chart_data(board: Dashboard) -> dict[str, Any]:
    """What ``dashboard.js`` plots: x (bucket starts) and one series per direction and
    per status (``[name, counts]``), the same numbers as the page's tables."""
    return {
        "unit": board.unit,
        "x": [_epoch(bucket) for bucket in board.buckets],
        "buckets": board.buckets,
        # [name, counts] pairs: in the tables' order (a JSON object's keys come sorted)
        "by_direction": [[name, counts] for name, counts in board.by_direction.items()],
        "by_status": [[name, counts] for name, counts in board.by_status.items()],
    }


def dashboard_routes(
    settings: Settings, log: CallLog, reader: DashboardReader, database: StoreExecutor
) -> list[Route]:
    """``GET /dashboard`` for the store ``reader`` reads, on ``database``'s threads
    (``log``: the directory the pickers are filled from)."""

    async def page(request: Request) -> Response:
        account = await signed_in(request)
        if isinstance(account, Response):
            return account
        now = pbx_now(settings.timezone)
        params = _with_default_dates(request.query_params, now.date())
        form = read_form(params, now.date())
        try:
            directory = await database.run(log.directory)
            board = None
            if form.filters is not None:
                read = functools.partial(reader.figures, scoped(form.filters, account), now)
                board = await database.run(read)
        except StoreError:
            return store_unavailable(request)
        context = {
            **form_context(request, settings, form, directory, account),
            "board": board,
            "charts": chart_data(board) if board is not None else None,
            "weekdays": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
            "heat_top": max((max(day) for day in board.heat), default=0) if board else 0,
            "totals": [sum(counts) for counts in zip(*board.by_direction.values(), strict=True)]
            if board
            else [],
        }
        name = "_dashboard.html" if context["fragment"] else "dashboard.html"
        status = 400 if form.errors else 200
        return templates.TemplateResponse(request, name, context, status, _HEADERS)

    return [Route(PATH, page, methods=["GET", "HEAD"])]
