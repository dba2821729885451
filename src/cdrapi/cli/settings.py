"""The settings of a command that opens the store (the file and environment, its options
winning where given), and the errors such a command reports as one line."""

from __future__ import annotations

from typing import Any

from cdrapi.cli.common import clean_errors
from cdrapi.settings import Settings, SettingsError, load_settings
from cdrapi.store.engine import StoreError

__all__ = ["STORE_ERRORS", "settings"]

STORE_ERRORS: tuple[type[Exception], ...] = (SettingsError, StoreError)


def settings(config: str | None, **overrides: Any) -> Settings:
    """The settings, with command-line ``overrides`` winning where given."""
    with clean_errors(SettingsError):
        return load_settings(config, **overrides)
