"""Playable audio for the demo's recordings: two voices talking, as a phone records them.

:func:`write_recordings` writes, under a recordings directory, a WAV file (8 kHz, mono,
16-bit PCM: a phone call's quality) at the path of every recording and monitor file the
store's calls name from a given time on, so the call view's player has something to
play. Nothing is downloaded and no speech engine is needed: the "speech" is synthesised
here with the standard library only. Each voice (a lower and a higher one) is a pulse
train at its pitch through three vowel formant resonators, syllables start with a
fricative hiss or a plosive burst or nothing, syllables make words and words make turns,
the two voices take turns with pauses, and a faint line hiss runs under everything. It
sounds like a muffled conversation in a language nobody speaks, which is what a demo needs.

To stay fast and small, a clip is made once for each length (the call's talk time, up to
:data:`MAX_SECONDS`, rounded up to :data:`STEP` seconds) and each of :data:`VARIANTS`
conversations; the recordings sharing one are hard links to one file (copies where the
file system has none). For the last three days of ``make run``'s demo that is a few
hundred recordings in about 10 MB, written in a second or two.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import sys
import wave
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path
from random import Random

from sqlalchemy import Engine

from cdrapi.store.recordings import recordings_since

__all__ = ["MAX_SECONDS", "RATE", "STEP", "VARIANTS", "AudioSummary", "clip", "write_recordings"]

#: Samples a second (a phone line's 8 kHz), one channel, 16 bits a sample.
RATE = 8000
#: A clip lasts the call's talk time rounded up to STEP seconds, at most MAX_SECONDS.
STEP, MAX_SECONDS = 5, 45
#: Different conversations made for each length.
VARIANTS = 3

# Vowels by their first three formants (Hz), roughly those of a, e, i, o, u.
_VOWELS = ((730, 1090, 2440), (530, 1840, 2480), (300, 2200, 2900), (570, 840, 2410),
           (330, 900, 2300))  # fmt: skip
_BANDWIDTHS = (80, 100, 140)
_ONSETS = ("", "s", "sh", "t")
_HISS = 0.004  # the line's own noise, as a share of full scale


@dataclass(frozen=True)
class AudioSummary:
    """What :func:`write_recordings` did: files (recordings and monitor files) that now
    have audio, the distinct clips written for them, and their bytes."""

    files: int
    clips: int
    bytes: int


def _resonate(samples: list[float], frequency: float, bandwidth: float) -> list[float]:
    """``samples`` through a two-pole resonator at ``frequency`` (unit gain at 0 Hz)."""
    r = math.exp(-math.pi * bandwidth / RATE)
    b, c = 2 * r * math.cos(2 * math.pi * frequency / RATE), -r * r
    a = 1 - b - c
    out, y1, y2 = [], 0.0, 0.0
    for x in samples:
        y = a * x + b * y1 + c * y2
        out.append(y)
        y1, y2 = y, y1
    return out


def _syllable(rnd: Random, pitch: float, vowel: int, onset: str) -> list[float]:
    """One syllable of a voice at ``pitch`` Hz: its onset, then the vowel."""
    sound: list[float] = []
    if onset in ("s", "sh"):
        noise = [rnd.uniform(-1, 1) for _ in range(int(RATE * rnd.uniform(0.05, 0.09)))]
        hiss = _resonate(noise, 3600 if onset == "s" else 2400, 900)
        top = max(abs(h) for h in hiss) or 1.0
        sound += [0.4 * h / top * math.sin(math.pi * n / len(hiss)) for n, h in enumerate(hiss)]
    elif onset == "t":
        sound += [0.0] * int(RATE * 0.03)
        sound += [rnd.uniform(-0.6, 0.6) * (1 - n / 120) for n in range(120)]
    length = int(RATE * rnd.uniform(0.12, 0.22))
    rise = rnd.choice((-0.12, 0.0, 0.1))  # falling, level or rising intonation
    source, phase = [], 0.0
    for n in range(length):
        phase += pitch * (1 + rise * n / length) / RATE
        if phase >= 1.0:
            phase -= 1.0
        source.append(1.0 - 2.0 * phase)  # a sawtooth: a glottal pulse's rich harmonics
    voiced = source
    for formant, bandwidth in zip(_VOWELS[vowel], _BANDWIDTHS, strict=True):
        voiced = _resonate(voiced, formant, bandwidth)
    peak = max(abs(v) for v in voiced) or 1.0
    attack, release = int(RATE * 0.02), int(RATE * 0.05)
    for n in range(length):
        envelope = min(1.0, n / attack, (length - n) / release)
        sound.append(0.8 * voiced[n] / peak * envelope)
    return sound


class _Voices:
    """Two voices' syllables (made once) and the line's hiss, as 16-bit sample arrays."""

    def __init__(self, seed: int = 1) -> None:
        rnd = Random(seed)
        self.hiss = [_HISS * rnd.uniform(-1, 1) for _ in range(RATE)]
        self.syllables = [
            [
                self._pcm(_syllable(rnd, pitch, vowel, onset), level, rnd)
                for vowel in range(len(_VOWELS))
                for onset in _ONSETS
                for _ in range(2)
            ]
            for pitch, level in ((115.0, 0.55), (205.0, 0.45))
        ]
        self.line = self._pcm([0.0] * RATE, 0.0, rnd)

    def _pcm(self, sound: list[float], level: float, rnd: Random) -> array[int]:
        """16-bit samples of ``sound`` at ``level``, the line's hiss mixed in."""
        start = rnd.randrange(RATE)
        hiss = self.hiss[start:] + self.hiss[:start]
        return array(
            "h",
            (
                int(32767 * max(-1.0, min(1.0, level * s + hiss[n % RATE])))
                for n, s in enumerate(sound)
            ),
        )

    def quiet(self, samples: int, rnd: Random) -> array[int]:
        """``samples`` of the line's hiss alone."""
        out = array("h")
        while len(out) < samples:
            start = rnd.randrange(RATE // 2)
            out.extend(self.line[start : start + min(RATE // 2, samples - len(out))])
        return out


_VOICES: _Voices | None = None


def clip(seconds: int, variant: int = 0) -> bytes:
    """``seconds`` of a two-voice conversation (16-bit little-endian mono PCM at
    :data:`RATE`); the same arguments always give the same sound."""
    global _VOICES
    if _VOICES is None:
        _VOICES = _Voices()
    voices, rnd = _VOICES, Random(variant * 7919 + seconds)
    total = seconds * RATE
    out = voices.quiet(int(RATE * 0.3), rnd)  # the line opens
    speaker = 0  # the agent answers first
    while len(out) < total:
        for _ in range(rnd.randint(2, 7)):  # words of a turn
            for _ in range(rnd.randint(1, 3)):  # syllables of a word
                out.extend(rnd.choice(voices.syllables[speaker]))
            out.extend(voices.quiet(int(RATE * rnd.uniform(0.04, 0.16)), rnd))
        out.extend(voices.quiet(int(RATE * rnd.uniform(0.3, 0.9)), rnd))
        speaker = 1 - speaker if rnd.random() < 0.85 else speaker
    del out[total:]
    if sys.byteorder == "big":  # WAV is little-endian
        out.byteswap()
    return out.tobytes()


def _write_wav(path: Path, frames: bytes) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(frames)


def _place(made: Path, path: Path) -> None:
    """``path`` as a hard link to ``made`` (a copy where there are none)."""
    try:
        os.link(made, path)
    except OSError:
        shutil.copyfile(made, path)


def write_recordings(
    engine: Engine, root: Path, *, since: dt.date, replace: bool = False
) -> AudioSummary:
    """Write a WAV file under ``root`` at the path of every recording and monitor file of
    the calls from ``since`` (a day, in the PBX's time) on. A file already there is kept
    (``replace``: written again). A path that would leave ``root`` is refused
    (ValueError): the paths come from the store."""
    root.mkdir(parents=True, exist_ok=True)
    base = root.resolve()
    made: dict[tuple[int, int], Path] = {}
    files = size = 0
    for name, billsec in recordings_since(engine, f"{since.isoformat()} 00:00:00"):
        path = (base / name).resolve()
        if not path.is_relative_to(base) or path == base:
            raise ValueError(f"recording path {name!r} leaves {root}")
        files += 1
        if path.exists() and not replace:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        seconds = min(MAX_SECONDS, max(STEP, -(-billsec // STEP) * STEP))
        key = (seconds, zlib.crc32(name.encode()) % VARIANTS)
        if key in made:
            _place(made[key], path)
            continue
        _write_wav(path, clip(*key))
        made[key] = path
        size += path.stat().st_size
    return AudioSummary(files, len(made), size)
