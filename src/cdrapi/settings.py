"""cdrapi's settings: one registry, read from the environment and an optional TOML file.

Each setting is a field of :class:`Settings` with its default and its help text; the
README's configuration table is checked against this class by a test. Precedence, highest
first: command-line options, ``CDRAPI_*`` environment variables, the TOML file named by
``--config`` or ``CDRAPI_CONFIG`` (keys without the prefix: ``db = "sqlite:///x.db"``),
the defaults. The same TOML file may hold the ingestion directory (``[[projects]]``,
``[[users]]``, ``[[trunks]]``, ``[[inbound_routes]]``, ``[[queues]]``): those tables are
read by :mod:`cdrapi.ingest.directory`, not here.

Scoped API tokens are ``[[tokens]]`` tables of that file (the setting ``scoped_tokens``,
``CDRAPI_SCOPED_TOKENS`` as JSON in the environment), each a :class:`TokenScope`: a token
that sees only the calls of some projects and/or extensions, where the tokens of
``api_token`` see every call.

The CRM fields of a record (``customer_id``, ``external_id``, ``external_info``,
``accounting_value``, ``comments``) come from the PBX's records as the config file's
``[fields]`` table says (the setting ``crm_fields``, ``CDRAPI_CRM_FIELDS`` as JSON): each
field names a :class:`FieldSource`, a column of the CDR (a header or ``--columns`` name, an
extra column of the SQL ``cdr`` table, or a raw CDR field such as ``userfield``) and
optionally a regular expression whose group is the value. Ingestion applies it
(:mod:`cdrapi.ingest.crm_fields`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["CRM_FIELDS", "FieldSource", "Settings", "SettingsError", "TokenScope", "load_settings"]

#: Top-level TOML tables that belong to the ingestion directory, not to the settings.
DIRECTORY_TABLES = frozenset({"projects", "users", "trunks", "inbound_routes", "queues"})
#: The config file's name for the ``scoped_tokens`` setting: ``[[tokens]]`` tables.
TOKENS_TABLE = "tokens"
#: The config file's name for the ``crm_fields`` setting: a ``[fields]`` table.
FIELDS_TABLE = "fields"
#: The record fields ``[fields]`` may fill from the PBX's records, in record order.
CRM_FIELDS = ("customer_id", "accounting_value", "comments", "external_id", "external_info")

_ProjectId = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
# As a web account's extensions: no spaces or commas, at most 80 characters.
_Extension = Annotated[str, StringConstraints(pattern=r"^[^\s,]{1,80}$")]


class SettingsError(Exception):
    """The configuration is invalid or its file unreadable."""


class TokenScope(BaseModel):
    """An API token that sees only some calls, as a web account's scope does: those of
    ``projects`` (their ids) and of ``extensions`` (the caller, the called number or the
    call's directory user); both given, a call must match both. ``/api/cdr`` answers such
    a token exactly as if the scope were one more filter, counts included."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str
    projects: tuple[_ProjectId, ...] = ()
    extensions: tuple[_Extension, ...] = ()

    @field_validator("extensions", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        # ``extensions = [101]`` means the extension "101", as the request filters read it.
        if isinstance(value, list | tuple):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("token")
    @classmethod
    def _usable_token(cls, value: str) -> str:
        if not value.strip() or value != value.strip():
            raise ValueError("a token must not be empty or start or end with white space")
        return value

    @model_validator(mode="after")
    def _some_scope(self) -> TokenScope:
        if not self.projects and not self.extensions:
            raise ValueError(
                "a scoped token needs `projects` or `extensions` (a token that sees every "
                "call belongs in api_token)"
            )
        return self


class FieldSource(BaseModel):
    """Where a CRM field's value is in a CDR: its ``column`` (a name of the source's
    columns, or a raw CDR field: ``userfield``, ``accountcode``...) and, optionally, a
    ``pattern`` (a Python regular expression) searched in that column's value: the value is
    its group (or the whole match for a pattern without one). A bare string in the config
    file is a ``column``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    pattern: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_column(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"column": value}
        if not isinstance(value, dict):
            raise ValueError(
                'expected a column name or a table such as { column = "userfield", '
                "pattern = 'ext=(\\d+)' }"
            )
        return value

    @field_validator("column")
    @classmethod
    def _usable_column(cls, value: str) -> str:
        if not value.strip() or value != value.strip():
            raise ValueError("a column name must not be empty or start or end with white space")
        return value

    @field_validator("pattern")
    @classmethod
    def _usable_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            groups = re.compile(value).groups
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        if groups > 1:
            raise ValueError(
                f"the pattern has {groups} groups: keep one, the value's, and make the "
                "others (?:...)"
            )
        return value


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
    service_level_seconds: int = Field(
        20,
        ge=0,
        le=86400,
        description="Seconds of queue wait within which an answered call meets the "
        "dashboard's service level (per queue: answered within them, of the calls offered).",
    )
    dashboard_warmup: bool = Field(
        True,
        description="Whether `cdrapi serve` counts the dashboard's figures of the last 30 "
        "and 365 days (unscoped and for each account's projects) in the background when it "
        "starts, so that a first view is fast (one worker only; otherwise the first views "
        "count them).",
    )
    scoped_tokens: tuple[TokenScope, ...] = Field(
        (),
        description="API tokens that see only some calls (the config file's `[[tokens]]` "
        "tables; here a JSON list of them): each `token` sees the calls of its `projects` "
        "(ids) and/or `extensions`, both given: calls matching both.",
    )
    crm_fields: dict[str, FieldSource] = Field(
        {},
        description="Where ingestion finds the CRM fields `customer_id`, `external_id`, "
        "`external_info`, `accounting_value` and `comments` (the config file's `[fields]` "
        "table; here a JSON object): each names a column of the CDR (a CSV header or "
        "`--columns` name, an extra column of the SQL cdr table, `userfield`...) or "
        "`{ column = \"userfield\", pattern = 'ext=(\\d+)' }`.",
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

    @field_validator("crm_fields")
    @classmethod
    def _known_fields(cls, value: dict[str, FieldSource]) -> dict[str, FieldSource]:
        unknown = [name for name in value if name not in CRM_FIELDS]
        if unknown:
            raise ValueError(
                f"[fields] has no field {unknown[0]!r} (it fills {', '.join(CRM_FIELDS)})"
            )
        return value

    @model_validator(mode="after")
    def _distinct_tokens(self) -> Settings:
        everything = set(self.tokens)
        seen: dict[str, int] = {}
        for number, scope in enumerate(self.scoped_tokens, 1):
            if scope.token in everything:
                raise ValueError(
                    f"[[tokens]] table {number}: its token is also in api_token "
                    "(CDRAPI_API_TOKEN), which sees every call: give it one place"
                )
            if scope.token in seen:
                raise ValueError(
                    f"[[tokens]] tables {seen[scope.token]} and {number} give the same token"
                )
            seen[scope.token] = number
        return self

    @property
    def tokens(self) -> list[str]:
        """The configured Bearer tokens that see every call (``api_token``'s)."""
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
    """The TOML file less the directory's tables, its ``[[tokens]]`` the ``scoped_tokens``,
    its ``[fields]`` the ``crm_fields``."""

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        data = super()._read_files(files, deep_merge=deep_merge)
        found = {key: value for key, value in data.items() if key not in DIRECTORY_TABLES}
        if TOKENS_TABLE in found:
            if "scoped_tokens" in found:
                raise ValueError("give scoped tokens as [[tokens]] or scoped_tokens, not both")
            found["scoped_tokens"] = found.pop(TOKENS_TABLE)
        if FIELDS_TABLE in found:
            if "crm_fields" in found:
                raise ValueError("give the CRM fields as [fields] or crm_fields, not both")
            found["crm_fields"] = found.pop(FIELDS_TABLE)
        return found


def _where(loc: tuple[int | str, ...]) -> str:
    """Where a problem is, as the user wrote it: ``[[tokens]] table 2: projects``."""
    if len(loc) >= 2 and loc[0] == "scoped_tokens" and isinstance(loc[1], int):
        rest = ".".join(str(part) for part in loc[2:])
        return f"[[tokens]] table {loc[1] + 1}" + (f": {rest}" if rest else "")
    if loc and loc[0] == "crm_fields":
        return "[fields]" + (" " + ".".join(str(part) for part in loc[1:]) if loc[1:] else "")
    return ".".join(str(part) for part in loc)


def _problem(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        message = "expected text without spaces or commas, at most 80 characters"
    loc = tuple(error["loc"])
    if loc[:1] == ("crm_fields",):
        if error["type"] == "dict_type":
            message = 'expected a table of fields, such as customer_id = "customer_id"'
        elif error["type"] == "extra_forbidden":
            message = "unknown key (a field's table has column and pattern)"
        elif error["type"] == "string_type":
            message = "expected text"
        elif error["type"] == "missing":
            message = "missing: the column the value is in"
        if message.startswith("[fields] "):  # says where itself
            return message
    where = _where(tuple(error["loc"]))
    return f"{where}: {message}" if where else message


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
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise SettingsError(f"invalid configuration: {problems}") from exc
    except (OSError, ValueError) as exc:
        if path is None:  # an environment variable that is not the JSON it must be
            raise SettingsError(f"invalid configuration: {exc}") from exc
        raise SettingsError(f"cannot read config file {path}: {exc}") from exc
