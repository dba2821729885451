"""cdrapi's settings: one registry, read from the environment and an optional TOML file.

Each setting is a field of :class:`Settings` with its default and its help text; the
README's configuration table is checked against this class by a test. Precedence, highest
first: command-line options, ``CDRAPI_*`` environment variables, the TOML file named by
``--config`` or ``CDRAPI_CONFIG`` (keys without the prefix: ``db = "sqlite:///x.db"``),
the defaults. The same TOML file may hold the ingestion directory (``[[projects]]``,
``[[users]]``, ``[[trunks]]``, ``[[inbound_routes]]``, ``[[queues]]``): those tables are
read by :mod:`cdrapi.ingest.directory`, not here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "SettingsError", "load_settings"]

#: Top-level TOML tables that belong to the ingestion directory, not to the settings.
DIRECTORY_TABLES = frozenset({"projects", "users", "trunks", "inbound_routes", "queues"})


class SettingsError(Exception):
    """The configuration is invalid or its file unreadable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDRAPI_", extra="forbid")

    db: str = Field(
        "sqlite:///cdrapi.db",
        description="Database URL: `sqlite:///path/to/file.db` or `postgresql://user:pass@host/db`.",
    )
    api_token: str = Field(
        "",
        description="Bearer token(s) clients must send, comma-separated. "
        "`cdrapi serve` generates and prints one when none is set.",
    )
    api_key: str = Field(
        "",
        description="Optional signing key: when set, every request needs a valid `api_hash`.",
    )
    timezone: str = Field(
        "local",
        description="The PBX's time zone (IANA name such as `Europe/Bucharest`); "
        "call times are stored and shown in it. `local` is this machine's zone.",
    )

    recordings_dir: str = Field(
        "",
        description="Directory of the call recordings (MixMonitor, FreePBX's `monitor`): "
        "ingestion links calls to the files under it and the server serves them at "
        "`/recordings/...`.",
    )
    public_url: str = Field(
        "",
        description="This server's address as clients reach it (`https://pbx.example.com`), "
        "the start of each `recording_url`; without it the URL is a path (`/recordings/...`).",
    )
    recording_secret: str = Field(
        "",
        description="Key that signs expiring recording links (`?expires=...&signature=...`, "
        "from `/recording-links/...`); without it recordings need the Bearer token.",
    )
    recording_link_ttl: int = Field(
        3600, ge=1, description="Seconds a signed recording link stays valid."
    )
    recovered_window: int = Field(
        24,
        ge=0,
        description="Hours after a missed inbound call within which an answered call with "
        "the same number, in either direction, marks it `is_recovered`.",
    )

    web_secret: str = Field(
        "",
        description="Key that signs the web call log's sign-in sessions; without it one is "
        "generated on first use and kept in the store, the same for every worker and restart.",
    )
    web_session_max_age: int = Field(
        43200, ge=60, description="Seconds a browser stays signed in to the web call log."
    )
    web_signin_failures: int = Field(
        5,
        ge=1,
        description="Failed sign-ins allowed per username and per client address within "
        "`CDRAPI_WEB_SIGNIN_WINDOW`; more are refused (429) until the oldest is that old.",
    )
    web_signin_window: int = Field(
        300, ge=1, description="Seconds over which failed sign-ins are counted."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value != "local":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def tokens(self) -> list[str]:
        """The configured Bearer tokens."""
        return [token.strip() for token in self.api_token.split(",") if token.strip()]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML source reads ``model_config["toml_file"]``; none is set by default.
        return init_settings, env_settings, _SettingsFile(settings_cls)


class _SettingsFile(TomlConfigSettingsSource):
    """The TOML file less the directory's tables."""

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        data = super()._read_files(files, deep_merge=deep_merge)
        return {key: value for key, value in data.items() if key not in DIRECTORY_TABLES}


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the settings; ``overrides`` (command-line options) win where not ``None``."""
    path = config_file or os.environ.get("CDRAPI_CONFIG") or None
    if path is not None and not Path(path).is_file():
        raise SettingsError(f"config file not found: {path}")
    settings_cls: type[Settings] = Settings
    if path is not None:
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": Path(path)})
        settings_cls = type("Settings", (Settings,), {"model_config": config})
    try:
        given = {key: value for key, value in overrides.items() if value is not None}
        return settings_cls(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from exc
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from exc
