"""Finding a call's recording under ``recordings_dir``.

MixMonitor files are matched by the CDR's ``recordingfile`` when it has one (FreePBX
stores the bare file name and keeps the file in ``YYYY/MM/DD/`` under the monitor
directory), else by the call's uniqueid in the file name (``<uniqueid>.wav``, FreePBX's
``in-<dst>-<src>-<date>-<time>-<uniqueid>.wav``, ``<anything>-<uniqueid>.mp3``). Only
the call's day directory and the top directory are looked at; their listings are cached
and read again when a lookup misses and the directory changed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

__all__ = ["RecordingIndex", "recording_url"]

_UID_IN_NAME = re.compile(r"(\d{9,11}\.\d+)(?=\.[A-Za-z0-9]+$|-)")
_AUDIO = (".wav", ".wav49", ".gsm", ".mp3", ".ogg", ".opus", ".flac", ".sln", ".g722", ".WAV")


def recording_url(public_url: str, relpath: str) -> str:
    """Where the server serves the recording at ``relpath`` (see server.recordings)."""
    # a path of characters quote() leaves as they are is its own quoted form (most are)
    quoted = relpath if _URL_SAFE(relpath) else quote(relpath)
    return f"{public_url.rstrip('/')}/recordings/{quoted}"


#: A path ``urllib.parse.quote`` leaves as it is (its always-safe characters and ``/``).
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~/-]*").fullmatch


class _Listing:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.mtime = path.stat().st_mtime_ns
            names = [entry.name for entry in os.scandir(path) if entry.is_file()]
        except OSError:
            self.mtime, names = -1, []
        self.names = set(names)
        self.by_uid: dict[str, str] = {}
        for name in sorted(names):
            if name.endswith(_AUDIO):
                for uid in _UID_IN_NAME.findall(name):
                    self.by_uid.setdefault(uid, name)

    def changed(self) -> bool:
        try:
            return self.path.stat().st_mtime_ns != self.mtime
        except OSError:
            return self.mtime != -1


class RecordingIndex:
    """Lookups of recordings under ``root`` (a directory; it may not exist yet)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._listings: dict[str, _Listing] = {}

    def _listing(self, sub: str, fresh: bool = False) -> _Listing:
        listing = self._listings.get(sub)
        if listing is None or (fresh and listing.changed()):
            listing = self._listings[sub] = _Listing(self.root / sub if sub else self.root)
        return listing

    def _find(self, sub: str, uid: str, name: str) -> str | None:
        for fresh in (False, True):
            listing = self._listing(sub, fresh)
            found = name if name and name in listing.names else listing.by_uid.get(uid)
            if found:
                return f"{sub}/{found}" if sub else found
        return None

    def find(self, uniqueid: str, recordingfile: str, start: str) -> str | None:
        """The recording's path relative to the root, or ``None``."""
        name = recordingfile.strip()
        if name and ("/" in name):
            path = Path(name)
            if path.is_absolute():
                try:
                    name = str(path.relative_to(self.root))
                except ValueError:
                    name = path.name
            if ".." not in Path(name).parts and (self.root / name).is_file():
                return name
            name = Path(name).name
        uid = uniqueid.rsplit("-", 1)[-1] if uniqueid else ""
        if not name and not uid:
            return None
        day = f"{start[:4]}/{start[5:7]}/{start[8:10]}" if len(start) >= 10 else ""
        for sub in (day, ""):
            found = self._find(sub, uid, name)
            if found:
                return found
        return None
