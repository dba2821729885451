"""The dashboard at ``/dashboard``: the figures of a search, as charts and tables.

The search is the call log's (:mod:`cdrapi.web.searchform`: the same form, the same
query string, so a link between the two pages keeps it), narrowed to the account's scope
(:func:`~cdrapi.web.auth.scoped`) and read by
:class:`~cdrapi.store.dashboard.DashboardReader`. Without a date (or preset) the
dashboard shows the last :data:`DEFAULT_DAYS` days, in the PBX's zone, as the form then
says. Without a session the page redirects to the sign-in form, which comes back here.

The first view of a store whose figures were never counted (right after its first import
or ``cdrapi demo``) would count every day of its period: seconds for a year of a busy
PBX. So the server counts ahead (:class:`DashboardWarmup`, a thread of its own started
with it, at a lower priority): the last :data:`DEFAULT_DAYS` days, then the last
:data:`YEAR_DAYS`, :data:`STEP_DAYS` at a time (the newest first), for the unscoped
search and each web account's project scope (the searches whose days are saved in the
store), then it stops. Those days are kept in memory and saved (a restart reads them),
and each period's figures are kept as a view makes them: a first view costs nothing. A
view of days the warm-up is counting waits for them (off the store's threads) instead of
counting them too. The server's shutdown ends the warm-up's statement under way.

Every figure is an HTML table, so the page is complete without JavaScript; the charts
(uPlot, shipped in ``static/``) are drawn by ``static/dashboard.js`` from the same
figures, embedded in the page as JSON. With htmx, the form's changes fetch the figures
alone (``#results``), as on the call log.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cdrapi.protocol.filters import CallFilters
from cdrapi.settings import Settings
from cdrapi.store.accounts import list_accounts
from cdrapi.store.calllog import CallLog
from cdrapi.store.dashboard import Dashboard, DashboardReader
from cdrapi.store.dashboard_days import DAY_END, DAY_START
from cdrapi.store.dashboard_saved import saved_search
from cdrapi.store.dashboard_stop import Stop, Stopped
from cdrapi.store.engine import StoreError
from cdrapi.store.executor import StoreExecutor
from cdrapi.web.auth import Account, scoped, templates
from cdrapi.web.calllog import form_context, signed_in, store_unavailable
from cdrapi.web.searchform import read_form
from cdrapi.web.shown import pbx_now

__all__ = [
    "DEFAULT_DAYS",
    "STEP_DAYS",
    "YEAR_DAYS",
    "DashboardWarmup",
    "chart_data",
    "dashboard_routes",
    "dashboard_warmup",
    "for_dashboard",
    "waited",
]

#: The period shown when the search names no date.
DEFAULT_DAYS = 30
#: The longer period the warm-up counts next, and the days it counts at a time.
YEAR_DAYS, STEP_DAYS = 365, 30
_NICER = 10  # the warm-up thread's nice value, above the server's
_SAVE_TRIES = 10  # saves tried at the end, a second apart (SQLite: a writer holding the lock)
_log = logging.getLogger(__name__)
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


def _last_days(days: int, today: dt.date) -> list[tuple[str, str]]:
    """The query pairs of the last ``days`` days up to ``today``."""
    start = today - dt.timedelta(days=days - 1)
    return [("from", start.isoformat()), ("to", today.isoformat())]


def _with_default_dates(params: QueryParams, today: dt.date) -> QueryParams:
    """``params``, with the last :data:`DEFAULT_DAYS` days when they name no date."""
    if any(params.get(name) for name in ("from", "to", "preset")):
        return params
    pairs = [(k, v) for k, v in params.multi_items() if k not in ("from", "to", "preset")]
    return QueryParams([*pairs, *_last_days(DEFAULT_DAYS, today)])


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


def _lower_priority() -> None:
    """This thread's nice value raised by :data:`_NICER` (Linux, where each thread has
    its own; elsewhere the call would name a process)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        thread = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + _NICER)
        )


class DashboardWarmup:
    """Counts the figures a person opens first when the server starts (see the module's
    docstring), in a thread of its own: :meth:`start`, and :meth:`stop` at shutdown.
    ``done`` is set once it has ended (finished, stopped, or the store not readable:
    the views then count as they would have)."""

    def __init__(self, settings: Settings, reader: DashboardReader) -> None:
        self._settings, self.reader = settings, reader
        self._stop = Stop()
        self._thread: threading.Thread | None = None
        self.done = threading.Event()

    def start(self) -> None:
        """Start counting, in a thread of its own."""
        self._thread = threading.Thread(
            target=self.run, name="cdrapi-dashboard-warmup", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """End the warm-up (its statement under way too) and wait for its thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def searches(self, days: int, today: dt.date) -> list[CallFilters]:
        """The dashboard's searches of the last ``days`` days, as a view makes them: the
        unscoped one, then each account's project scope whose days are saved."""
        form = read_form(QueryParams(_last_days(days, today)), today)
        assert form.filters is not None  # (the form's own dates)
        found: list[CallFilters] = [form.filters]
        for stored in list_accounts(self.reader.engine):
            account = Account.of(stored)
            filters = scoped(form.filters, account)
            if not stored.disabled and saved_search(filters) and filters not in found:
                found.append(filters)
        return found

    def run(self) -> None:
        """Count (the thread's work); logs what it did."""
        _lower_priority()
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            periods = self._warm()
        except Stopped:
            _log.info("dashboard warm-up stopped by the shutdown")
        except (StoreError, SQLAlchemyError, self.reader.engine.dialect.loaded_dbapi.Error) as exc:
            _log.info("dashboard warm-up ended, the store not readable: %s", exc)
        else:
            _log.info(
                "dashboard warm-up: %d periods counted in %.1f s (%.1f s CPU)",
                periods, time.perf_counter() - started, time.thread_time() - cpu,
            )  # fmt: skip
        finally:
            self.done.set()

    def _warm(self) -> int:
        reader, stop = self.reader, self._stop
        periods = 0
        for days in (DEFAULT_DAYS, YEAR_DAYS):
            now = pbx_now(self._settings.timezone)
            for filters in self.searches(days, now.date()):
                started, cpu = time.perf_counter(), time.thread_time()
                last = now.date()
                first = last - dt.timedelta(days=days - 1)
                while last >= first:  # the newest days first
                    step_first = max(first, last - dt.timedelta(days=STEP_DAYS - 1))
                    period = (step_first.isoformat() + DAY_START, last.isoformat() + DAY_END)
                    reader.count(dataclasses.replace(filters, date_between=period), stop=stop)
                    last = step_first - dt.timedelta(days=1)
                if stop.is_set():
                    raise Stopped
                reader.figures(filters, now)  # (from memory: kept for the store's version)
                periods += 1
                _log.debug(
                    "dashboard warm-up: %d days of %s in %.2f s (%.2f s CPU)",
                    days, saved_search(filters), time.perf_counter() - started,
                    time.thread_time() - cpu,
                )  # fmt: skip
        for _ in range(_SAVE_TRIES):  # behind an ingestion holding SQLite's write lock
            if reader.save() or stop.wait(1.0):
                break
        return periods


class _DashboardRoute(Route):
    """``GET /dashboard``, carrying the app's :class:`DashboardWarmup`."""

    def __init__(self, endpoint: Any, warmup: DashboardWarmup) -> None:
        super().__init__(PATH, endpoint, methods=["GET", "HEAD"])
        self.warmup = warmup


def dashboard_warmup(routes: Iterable[BaseRoute]) -> DashboardWarmup | None:
    """The dashboard's warm-up among the app's ``routes`` (those of
    :func:`~cdrapi.web.app.web_routes`), for the server to start and stop."""
    for route in routes:
        if isinstance(route, _DashboardRoute):
            return route.warmup
    return None


def dashboard_routes(
    settings: Settings, log: CallLog, reader: DashboardReader, database: StoreExecutor
) -> list[Route]:
    """``GET /dashboard`` for the store ``reader`` reads, on ``database``'s threads
    (``log``: the directory the pickers are filled from), with its warm-up
    (:func:`dashboard_warmup`: the server starts it)."""

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
                filters = scoped(form.filters, account)
                for counting in reader.counting(filters):  # (the warm-up's days)
                    await asyncio.to_thread(counting.wait)
                board = await database.run(functools.partial(reader.figures, filters, now))
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

    return [_DashboardRoute(page, DashboardWarmup(settings, reader))]
