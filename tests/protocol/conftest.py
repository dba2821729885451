"""The ``php`` oracle: the real PHP binary is the reference for encoding and signing.

One ``php`` process is started per test session (lazily, by the first test that
asks for the ``php`` fixture). It reads one JSON line per batch on stdin and
answers one JSON line with one result per case, so thousands of cases cost a
single round trip.

Values travel as tagged trees so that every PHP type and every byte survives:
``["s", base64 bytes]``, ``["i", "123"]``, ``["f", base64 big-endian double]``,
``["b", true]``, ``["n"]``, ``["a", [[key, value], ...]]`` (keys tagged ``i``
or ``s``). Results come back base64-encoded.

Set ``PHP_BINARY`` to use another binary. Without one the tests that need it
are skipped, unless ``CI=true``, where a missing PHP is a failure.

PHP runs with a large ``max_input_vars``: :func:`cdrapi.protocol.encoding.parse_str`
deliberately does not apply PHP's cap of 1000 variables.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

ORACLE_SCRIPT = r"""
function dec($v) {
    switch ($v[0]) {
        case 's': return base64_decode($v[1]);
        case 'i': return intval($v[1]);
        case 'f': return unpack('E', base64_decode($v[1]))[1];
        case 'b': return (bool) $v[1];
        case 'n': return null;
        case 'a':
            $r = [];
            foreach ($v[1] as $kv) { $r[dec($kv[0])] = dec($kv[1]); }
            return $r;
    }
    throw new Exception('bad tag ' . json_encode($v));
}
function run($op, $c) {
    switch ($op) {
        case 'http_build_query': return http_build_query(dec($c));
        case 'parse_str': parse_str(dec($c), $r); return serialize($r);
        case 'sign':
            $p = dec($c[0]);
            unset($p['api_hash']);
            return md5(http_build_query($p) . dec($c[1]));
        case 'round_trip':
            parse_str(http_build_query(dec($c)), $r);
            return http_build_query($r);
    }
    throw new Exception('bad op ' . $op);
}
while (($line = fgets(STDIN)) !== false) {
    [$op, $cases] = json_decode($line, true, 512, JSON_THROW_ON_ERROR);
    $out = [];
    foreach ($cases as $c) { $out[] = base64_encode(run($op, $c)); }
    echo json_encode($out), "\n";
    fflush(STDOUT);
}
"""

# php runs with -n (no php.ini) and these settings, so that the machine's ini
# files cannot change the reference behaviour.
PHP_SETTINGS = {
    "precision": "14",
    "serialize_precision": "-1",
    "arg_separator.input": "&",
    "arg_separator.output": "&",
    "max_input_nesting_level": "64",
    "max_input_vars": "100000000",
    "memory_limit": "2G",
    "display_errors": "0",
    "log_errors": "0",
    "error_reporting": "-1",
}

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def php_string(text: str | bytes) -> list[Any]:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    return ["s", _b64(data)]


def php_value(value: Any) -> list[Any]:
    """Tag a Python value as the PHP value it stands for."""
    if value is None:
        return ["n"]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return ["i", str(value)]
        try:
            value = float(value)  # what PHP holds for such a number
        except OverflowError:
            value = float("inf") if value > 0 else float("-inf")
    if isinstance(value, float):
        return ["f", _b64(struct.pack(">d", value))]
    if isinstance(value, str | bytes):
        return php_string(value)
    items = value.items() if isinstance(value, Mapping) else enumerate(value)
    return ["a", [[php_value(k), php_value(v)] for k, v in items]]


class PhpOracle:
    """A long-running ``php`` process answering batches of cases."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as php
        args = [binary, "-n"]
        for name, setting in PHP_SETTINGS.items():
            args += ["-d", f"{name}={setting}"]
        args += ["-r", ORACLE_SCRIPT]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def _batch(self, op: str, cases: Sequence[Any]) -> list[bytes]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        line = json.dumps([op, list(cases)], separators=(",", ":")) + "\n"
        self._proc.stdin.write(line.encode("ascii"))
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline()
        if not answer:
            self._stderr.seek(0)
            raise RuntimeError(f"php oracle died: {self._stderr.read().decode(errors='replace')}")
        results = [base64.b64decode(r) for r in json.loads(answer)]
        assert len(results) == len(cases)
        return results

    def http_build_query(self, values: Sequence[Any]) -> list[str]:
        return [
            r.decode("ascii")
            for r in self._batch("http_build_query", [php_value(v) for v in values])
        ]

    def parse_str(self, strings: Sequence[str | bytes]) -> list[bytes]:
        """``serialize()`` of what ``parse_str`` makes of each string."""
        return self._batch("parse_str", [php_string(s) for s in strings])

    def sign(self, cases: Sequence[tuple[Any, str]]) -> list[str]:
        batch = [[php_value(p), php_string(k)] for p, k in cases]
        return [r.decode("ascii") for r in self._batch("sign", batch)]

    def round_trip(self, values: Sequence[Any]) -> list[str]:
        """``http_build_query(parse_str(http_build_query($v)))``."""
        return [
            r.decode("ascii") for r in self._batch("round_trip", [php_value(v) for v in values])
        ]

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()


def _find_php() -> str | None:
    configured = os.environ.get("PHP_BINARY")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("php")


@pytest.fixture(scope="session")
def php() -> Iterator[PhpOracle]:
    binary = _find_php()
    if binary is None:
        reason = "the php CLI binary is not installed (set PHP_BINARY); the PHP oracle is needed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    oracle = PhpOracle(binary)
    try:
        yield oracle
    finally:
        oracle.close()
