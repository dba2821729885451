"""The directory: who and what the PBX's channels and numbers are.

It is read from the same TOML file as the settings (``--config``), as arrays of tables::

    [[projects]]
    id = 1
    name = "Support"

    [[users]]                       # an agent: by extension and/or channel
    id = 7
    extension = "101"
    fullname = "Maria Ionescu"
    channel = "PJSIP/maria"         # or a glob: "SIP/101*"
    project = 1

    [[trunks]]
    name = "Orange SIP"
    channel = "PJSIP/orange-*"      # channels of calls to and from the outside

    [[inbound_routes]]
    did = "0312285000"
    name = "Support line"
    project = 1

    [[queues]]
    name = "support"
    project = 1

Ids are optional (1, 2, ... in file order). A channel pattern is compared with the
channel without its ``-0000001a`` suffix: equal, or matching when it has ``*``, ``?`` or
``[``. :meth:`Directory.tables` gives the rows of the store's directory tables, and
:meth:`Directory.from_tables` takes them back.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdrapi.ingest.errors import DirectoryError

__all__ = [
    "Directory",
    "InboundRoute",
    "Project",
    "Queue",
    "Trunk",
    "User",
    "load_directory",
]

#: The TOML keys that hold the directory (the settings loader leaves them to this module).
DIRECTORY_KEYS = ("projects", "users", "trunks", "inbound_routes", "queues")


@dataclass(frozen=True)
class Project:
    id: int
    name: str


@dataclass(frozen=True)
class User:
    id: int
    extension: str
    fullname: str
    channel: str | None
    project_id: int | None


@dataclass(frozen=True)
class Trunk:
    id: int
    name: str
    channel: str


@dataclass(frozen=True)
class InboundRoute:
    id: int
    did: str
    name: str
    project_id: int | None


@dataclass(frozen=True)
class Queue:
    id: int
    name: str
    project_id: int | None


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


@dataclass
class Directory:
    """The directory, with the lookups derivation needs."""

    projects: list[Project] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    trunks: list[Trunk] = field(default_factory=list)
    inbound_routes: list[InboundRoute] = field(default_factory=list)
    queues: list[Queue] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.project_names = {p.id: p.name for p in self.projects}
        self.by_extension = {u.extension: u for u in self.users if u.extension}
        self.by_channel = {
            u.channel: u for u in self.users if u.channel and not _is_glob(u.channel)
        }
        self._user_globs = [
            (re.compile(fnmatch.translate(u.channel)), u)
            for u in self.users
            if u.channel and _is_glob(u.channel)
        ]
        self.trunk_channels = {t.channel for t in self.trunks if not _is_glob(t.channel)}
        globs = [fnmatch.translate(t.channel) for t in self.trunks if _is_glob(t.channel)]
        self._trunk_glob = re.compile("|".join(globs)) if globs else None
        self.routes = {r.did: r for r in self.inbound_routes}
        self.queue_projects = {q.name: q.project_id for q in self.queues}

    def is_trunk(self, channel: str) -> bool:
        """Whether ``channel`` (without its suffix) is one of the trunks."""
        if channel in self.trunk_channels:
            return True
        return self._trunk_glob is not None and self._trunk_glob.match(channel) is not None

    def user_of_channel(self, channel: str) -> User | None:
        """The user whose channel pattern ``channel`` (without suffix) matches."""
        user = self.by_channel.get(channel)
        if user is None:
            for pattern, candidate in self._user_globs:
                if pattern.match(channel):
                    return candidate
        return user

    @classmethod
    def from_tables(cls, tables: dict[str, list[dict[str, Any]]]) -> Directory:
        """The directory stored in the store's tables (as
        :meth:`cdrapi.store.writer.Writer.read_directory` gives them)."""
        return cls(
            projects=[Project(r["id"], r["name"]) for r in tables["projects"]],
            users=[
                User(r["id"], r["extension"], r["fullname"], r["channel_pattern"], r["project_id"])
                for r in tables["users"]
            ],
            trunks=[Trunk(r["id"], r["name"], r["channel_pattern"]) for r in tables["trunks"]],
            inbound_routes=[
                InboundRoute(r["id"], r["did"], r["name"], r["project_id"])
                for r in tables["inbound_routes"]
            ],
            queues=[Queue(r["id"], r["name"], r["project_id"]) for r in tables["queues"]],
        )

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Rows for the store's directory tables
        (:meth:`cdrapi.store.writer.Writer.replace_directory`)."""
        return {
            "projects": [{"id": p.id, "name": p.name} for p in self.projects],
            "users": [
                {
                    "id": u.id,
                    "extension": u.extension,
                    "fullname": u.fullname,
                    "channel_pattern": u.channel,
                    "project_id": u.project_id,
                }
                for u in self.users
            ],
            "trunks": [
                {"id": t.id, "name": t.name, "channel_pattern": t.channel} for t in self.trunks
            ],
            "inbound_routes": [
                {"id": r.id, "did": r.did, "name": r.name, "project_id": r.project_id}
                for r in self.inbound_routes
            ],
            "queues": [
                {"id": q.id, "name": q.name, "project_id": q.project_id} for q in self.queues
            ],
        }


# table -> (required keys, optional keys); "project" and "project_id" are the same key.
_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "projects": (("name",), ("id",)),
    "users": (("fullname",), ("id", "extension", "channel", "channel_pattern", "project")),
    "trunks": (("channel",), ("id", "name", "channel_pattern")),
    "inbound_routes": (("did",), ("id", "name", "project")),
    "queues": (("name",), ("id", "project")),
}


def _entries(where: str, table: str, given: Any) -> list[dict[str, Any]]:
    if not isinstance(given, list) or not all(isinstance(item, dict) for item in given):
        raise DirectoryError(f"{where}: [[{table}]] must be an array of tables")
    required, optional = _KEYS[table]
    entries = []
    for number, item in enumerate(given, 1):
        item = dict(item)
        if "project_id" in item:
            item.setdefault("project", item.pop("project_id"))
        if "channel_pattern" in item:
            item.setdefault("channel", item.pop("channel_pattern"))
        unknown = set(item) - set(required) - set(optional)
        missing = [key for key in required if key not in item]
        if table == "users" and "extension" not in item and "channel" not in item:
            missing.append("extension or channel")
        if unknown or missing:
            problem = (
                f"unknown key(s) {', '.join(sorted(unknown))}"
                if unknown
                else f"missing {', '.join(missing)}"
            )
            raise DirectoryError(f"{where}: {table} entry {number}: {problem}")
        for key, value in item.items():
            ok = isinstance(value, int) if key in ("id", "project") else isinstance(value, str)
            if not ok or isinstance(value, bool):
                kind = "an integer" if key in ("id", "project") else "a string"
                raise DirectoryError(f"{where}: {table} entry {number}: {key} must be {kind}")
        item.setdefault("id", number)
        entries.append(item)
    ids = [item["id"] for item in entries]
    if len(set(ids)) != len(ids):
        raise DirectoryError(f"{where}: {table}: duplicate ids")
    return entries


def directory_from(data: dict[str, Any], where: str = "directory") -> Directory:
    """A directory from parsed TOML ``data`` (keys other than the directory's ignored)."""
    tables = {name: _entries(where, name, data.get(name, [])) for name in DIRECTORY_KEYS}
    known = {item["id"] for item in tables["projects"]}
    for name in ("users", "inbound_routes", "queues"):
        for item in tables[name]:
            if item.get("project") is not None and item["project"] not in known:
                raise DirectoryError(
                    f"{where}: {name} {item['id']}: unknown project {item['project']}"
                )
    return Directory(
        projects=[Project(i["id"], i["name"]) for i in tables["projects"]],
        users=[
            User(i["id"], i.get("extension", ""), i["fullname"], i.get("channel"), i.get("project"))
            for i in tables["users"]
        ],
        trunks=[
            Trunk(i["id"], i.get("name", i["channel"]), i["channel"]) for i in tables["trunks"]
        ],
        inbound_routes=[
            InboundRoute(i["id"], i["did"], i.get("name", i["did"]), i.get("project"))
            for i in tables["inbound_routes"]
        ],
        queues=[Queue(i["id"], i["name"], i.get("project")) for i in tables["queues"]],
    )


def load_directory(path: str | Path | None) -> Directory:
    """The directory in the TOML file at ``path`` (empty when ``path`` is ``None``)."""
    if path is None:
        return Directory()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise DirectoryError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DirectoryError(f"{path}: {exc}") from exc
    return directory_from(data, str(path))
