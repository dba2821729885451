"""The web pages' routes, put together for the server to mount.

:func:`web_routes` gives the sign-in routes (:mod:`cdrapi.web.auth`), the call log at
``/`` (:mod:`cdrapi.web.calllog`), the call view at ``/calls/{key}``
(:mod:`cdrapi.web.callview`), the dashboard of a search at ``/dashboard``
(:mod:`cdrapi.web.dashboard`), the exports of a search at ``/export.csv`` and
``/export.xlsx`` (:mod:`cdrapi.web.export`) and the static files at ``/static`` (the
stylesheet, htmx and uPlot, shipped in the package: a PBX's LAN often has no internet).
The server hands in what the web layer may not import itself: how to make a playable
recording link.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from cdrapi.settings import Settings
from cdrapi.store.calllog import CallLog
from cdrapi.store.dashboard import SERVICE_LEVEL_SECONDS, DashboardReader
from cdrapi.store.executor import StoreExecutor
from cdrapi.web.auth import sign_in_routes, templates
from cdrapi.web.calllog import calllog_routes
from cdrapi.web.callview import callview_routes
from cdrapi.web.dashboard import dashboard_routes
from cdrapi.web.export import export_routes
from cdrapi.web.shown import register

__all__ = ["STATIC_DIR", "web_routes"]

STATIC_DIR = Path(__file__).parent / "static"

register(templates.env)


def web_routes(
    settings: Settings,
    engine: Engine,
    database: StoreExecutor,
    recording_link: Callable[[str], str | None],
) -> list[BaseRoute]:
    """Every web route for the app's store (``engine``, read on ``database``'s threads);
    ``recording_link(path)`` is a URL the browser can play a recording from, or ``None``."""
    log = CallLog(engine)
    # service_level_seconds: a setting to come (until then, the store's default)
    service_level = getattr(settings, "service_level_seconds", SERVICE_LEVEL_SECONDS)
    reader = DashboardReader(engine, service_level=service_level)
    return [
        *sign_in_routes(settings, database),
        *calllog_routes(settings, log, database),
        *callview_routes(settings, log, database, recording_link),
        *dashboard_routes(settings, log, reader, database),
        *export_routes(settings, database),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
