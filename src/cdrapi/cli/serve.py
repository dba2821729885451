"""``cdrapi serve``: the /api/cdr server under uvicorn.

Connections use :class:`cdrapi.server.protocol.HttpProtocol` (limits on request heads,
timeouts on heads and bodies); with ``--workers`` above 1 each worker exits when the
supervisor does (:mod:`cdrapi.server.supervisor`).

With ``recordings_dir`` set and no ``recording_secret``, the key that signs the recording
links (the call view's player) is one generated once and kept in the store
(:func:`cdrapi.store.accounts.web_key`, as the session key is), so every worker and
every restart signs and checks links alike: recordings play with no configuration.

With one worker (and the ``dashboard_warmup`` setting on), the server counts the
dashboard's first periods in the background as it starts
(:class:`cdrapi.web.dashboard.DashboardWarmup`); with more, each worker would count the
same days, so none does and the first views count them (saved for every worker).
"""

from __future__ import annotations

import json
import os
import secrets
import sys

import click

from cdrapi.cli.common import clean_errors, config_option, db_option
from cdrapi.cli.settings import STORE_ERRORS, settings
from cdrapi.store.accounts import web_key
from cdrapi.store.engine import connect

__all__ = ["RECORDING_KEY", "serve"]

#: The name of the generated recording-link key in the store's ``web_keys``.
RECORDING_KEY = "recordings"


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@config_option
def serve(
    db: str | None, host: str, port: int, workers: int, access_log: bool, config: str | None
) -> None:
    """Serve the /api/cdr API over HTTP."""
    import uvicorn

    chosen = settings(config, db=db)
    with clean_errors(*STORE_ERRORS):
        engine = connect(chosen.db)  # create the schema once, before any worker starts
        try:
            if chosen.recordings_dir and not chosen.recording_secret:
                chosen.recording_secret = web_key(engine, RECORDING_KEY)
        finally:
            engine.dispose()
    token_note = ""
    if not chosen.tokens:
        chosen.api_token = secrets.token_urlsafe(24)
        token_note = " (generated: set CDRAPI_API_TOKEN to choose your own)"
    if workers > 1:  # each would count the same days: the first views count and save them
        chosen.dashboard_warmup = False
    # Workers are separate processes: they read the same settings from the environment,
    # where a setting that is not text (a number, the scoped tokens) is JSON.
    for name, value in chosen.model_dump(mode="json").items():
        text = value if isinstance(value, str) else json.dumps(value)
        os.environ[f"CDRAPI_{name.upper()}"] = text
    os.environ.pop("CDRAPI_CONFIG", None)
    click.echo(f"cdrapi serving {chosen.db} on http://{host}:{port}/api/cdr")
    click.echo(f"API token: {chosen.tokens[0]}{token_note}")
    sys.stdout.flush()
    uvicorn.run(
        "cdrapi.server.app:create_worker_app",
        factory=True,
        http="cdrapi.server.protocol:HttpProtocol",
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
    )
