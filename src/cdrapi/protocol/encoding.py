"""PHP-exact form encoding: ``http_build_query()`` and ``parse_str()`` of PHP 8.2.

The vendor signs requests with ``md5(http_build_query($params) . $api_key)`` and
reads form bodies with PHP's variable registration, so both directions have to
match PHP byte for byte. The rules below were checked against the ``php`` binary
(see ``tests/protocol``), which is the reference, not this text.

Strings and bytes
    PHP strings are byte strings. Here they are ``str``: bytes are turned into
    text with UTF-8 and ``errors="surrogateescape"``, and back the same way, so
    invalid UTF-8 that comes out of :func:`parse_str` goes back into
    :func:`http_build_query` as the exact original bytes.

http_build_query (default ``&`` separator, ``PHP_QUERY_RFC1738``, no numeric prefix)
    * An array is a ``Mapping`` (keys ``str`` or ``int``, in their order) or a
      ``list``/``tuple`` (keys ``0..n-1``), at any depth.
    * ``None`` and empty arrays are left out (no stray separator either).
    * ``True``/``False`` are ``1``/``0``; ints are decimal. Python ints outside
      the int64 range cannot exist in PHP, where the same number is a float, so
      they are printed as that float.
    * Floats are printed like C ``%.14G`` in PHP's dialect (``precision=14``):
      14 significant digits, correctly rounded (ties to even), trailing zeros
      dropped; exponent form when the decimal exponent is below -4 or at least
      14, always with a fractional part and no exponent padding (``1.0E+20``,
      ``1.0E-7``, ``1.2345678901234E+14``); ``-0``, ``INF``, ``-INF``, ``NAN``.
      One quirk of PHP's dtoa is kept: a 15-digit integral float that is an
      exact tie rounded down keeps its trailing zeros
      (``100000000000005.0`` is ``1.0000000000000E+14``, but
      ``100000000000004.0`` is ``1.0E+14``).
    * Nested keys are ``outer%5Binner%5D%5B0%5D``; keys and values are
      urlencoded: ``A-Za-z0-9`` and ``-_.`` stay, space is ``+``, every other
      byte is ``%XX`` with upper-case hex (so ``~`` is ``%7E``, ``*`` is ``%2A``).

parse_str (``php_default_treat_data`` + ``php_register_variable_ex``)
    * A NUL byte ends the input (PHP walks it as a C string).
    * The input is split on ``&``; empty pieces are skipped. The first ``=``
      splits name and value; a piece without ``=`` has the value ``""``.
    * Both are url-decoded: ``+`` is a space, ``%XX`` (ASCII hex digits, any
      case) is a byte, a ``%`` not followed by two hex digits stays as it is.
    * The decoded name ends at its first NUL byte. Values keep every byte.
    * Name rules: leading spaces are skipped; up to the first ``[``, ``.`` and
      space become ``_``; an empty top-level name drops the variable.
      ``[...]`` groups nest; ``[]`` appends, and so does a group holding just
      one C white-space character (``[ ]``, ``[%09]``; but ``[  ]`` is the key
      ``"  "`` and ``[ x]`` the key ``" x"``); after a ``]`` anything other than
      ``[`` ends the name (the rest is ignored). A ``[`` with no ``]`` after it
      is not an index: at the first level it becomes ``_`` and in the rest of
      the name ``.``, space and ``[`` become ``_`` too (``a[b.c`` is
      ``a_b_c``); at a deeper level it and everything after it is ignored.
    * Index strings that are canonical decimal int64 numbers (``0``, ``-5``,
      ``9223372036854775807``, but not ``00``, ``-0``, ``+1``, ``1 `` or
      ``9223372036854775808``) are int keys; everything else is a str key.
      This applies to the top-level name too (``5=x`` gives ``{5: "x"}``).
    * Appending uses PHP's "next free element" of that array: one more than
      the largest int key ever inserted into it (which may be negative:
      ``a[-5]=x&a[]=y`` gives ``{-5: "x", -4: "y"}``), ``0`` for an array with
      no int key. Once ``PHP_INT_MAX`` is taken, appending fails and the piece
      is silently dropped.
    * Assigning an existing key replaces its value in place (the first
      position is kept); a scalar met where an array is needed is replaced by
      an empty array, again in place; an array can be replaced by a scalar.
    * More than 64 (``max_input_nesting_level``) bracket groups, counting a
      trailing unmatched ``[`` as one, removes the whole top-level variable,
      including what earlier pieces had put in it. (PHP walks the levels in
      order, so when an append on the way fails at ``PHP_INT_MAX`` first, the
      piece is only dropped and the variable stays.)
    * ``max_input_vars`` is *not* applied: PHP stops after 1000 pieces (with a
      warning); this function reads them all. Request size limits belong to
      the HTTP layer. The tests run ``php`` with a large ``max_input_vars`` so
      that both agree.
    * Values are always ``str`` and arrays always ``dict``.

Everything is linear in the size of the input: no regular expressions, each
name is scanned once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, TypeAlias

__all__ = ["PhpArray", "http_build_query", "parse_str"]

PhpArray: TypeAlias = (
    Mapping[str, Any] | Mapping[int, Any] | Mapping[int | str, Any] | list[Any] | tuple[Any, ...]
)
"""What :func:`http_build_query` accepts as a PHP array."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_INPUT_NESTING_LEVEL = 64
_PRECISION = 14  # PHP's ``precision`` ini default, used by http_build_query for floats

# ---------------------------------------------------------------------------
# urlencode (RFC 1738 flavour, as PHP's urlencode())

_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
_QUOTED: tuple[str, ...] = tuple(
    chr(b) if b in _UNRESERVED else "+" if b == 0x20 else f"%{b:02X}" for b in range(256)
)


def _to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _to_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _urlencode(text: str) -> str:
    data = _to_bytes(text)
    if not data.translate(None, _UNRESERVED):
        return text  # nothing to quote: the text is plain ASCII
    quoted = _QUOTED
    return "".join([quoted[b] for b in data])


# ---------------------------------------------------------------------------
# http_build_query


def _keeps_trailing_zeros(magnitude: float) -> bool:
    """zend_dtoa's quirk: a 15-digit integer that is an exact tie rounded down
    (15th digit 5, 14th even) keeps its 14 digits as they are, zeros included:
    332655762769205.0 prints as 3.3265576276920E+14."""
    if not (1e14 <= magnitude < 1e15 and magnitude.is_integer()):
        return False
    text = str(int(magnitude))
    return text[14] == "5" and text[13] in "02468"


def _format_float(value: float) -> str:
    """``%.14G`` as PHP's own formatter prints it."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    if value == 0.0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    # 14 significant digits, correctly rounded (ties to even) like zend_dtoa mode 2.
    magnitude = abs(value)
    mantissa, _, exponent = f"{magnitude:.{_PRECISION - 1}e}".partition("e")
    digits = mantissa[0] + mantissa[2:]
    if not _keeps_trailing_zeros(magnitude):
        digits = digits.rstrip("0")
    point = int(exponent) + 1  # value = 0.<digits> * 10**point
    sign = "-" if value < 0 else ""
    if point < -3 or point > _PRECISION:
        exp = point - 1
        return f"{sign}{digits[0]}.{digits[1:] or '0'}E{'-' if exp < 0 else '+'}{abs(exp)}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if len(digits) <= point:
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _format_int(value: int) -> str:
    if INT64_MIN <= value <= INT64_MAX:
        return str(value)
    # Not a PHP int: PHP would hold this number as a float.
    try:
        return _format_float(float(value))
    except OverflowError:
        return "INF" if value > 0 else "-INF"


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return _urlencode(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return _urlencode(_format_int(int(value)))
    if isinstance(value, float):
        return _urlencode(_format_float(value))
    raise TypeError(f"http_build_query: unsupported value type {type(value).__name__}")


def _key(key: object) -> str:
    if isinstance(key, str):
        return _urlencode(key)
    if isinstance(key, int):  # bool too: PHP casts true/false keys to 1/0
        return str(int(key))
    raise TypeError(f"http_build_query: unsupported key type {type(key).__name__}")


def _items(array: object) -> Iterable[tuple[Any, Any]] | None:
    if isinstance(array, Mapping):
        return array.items()
    if isinstance(array, list | tuple):
        return enumerate(array)
    return None


def _build(array: object, prefix: str | None, out: list[str]) -> None:
    items = _items(array)
    if items is None:
        raise TypeError(f"http_build_query: expected a mapping or a list, not {type(array)}")
    for key, value in items:
        if value is None:
            continue
        name = _key(key) if prefix is None else f"{prefix}{_key(key)}%5D"
        if isinstance(value, Mapping | list | tuple):
            _build(value, name + "%5B", out)
        else:
            out.append(f"{name}={_scalar(value)}")


def http_build_query(params: PhpArray) -> str:
    """Encode ``params`` exactly as PHP 8.2's ``http_build_query($params)``.

    Raises ``TypeError`` for values PHP arrays built from JSON or forms cannot
    hold (bytes, objects, ...).
    """
    out: list[str] = []
    _build(params, None, out)
    return "&".join(out)


# ---------------------------------------------------------------------------
# parse_str

_HEX_DIGITS = "0123456789abcdefABCDEF"
_HEX_PAIRS: dict[bytes, bytes] = {
    (a + b).encode(): bytes.fromhex(a + b) for a in _HEX_DIGITS for b in _HEX_DIGITS
}


def _urldecode(data: bytes) -> bytes:
    """PHP's urldecode(): ``+`` is a space, bad ``%`` sequences are kept."""
    if b"+" in data:
        data = data.replace(b"+", b" ")
    if b"%" not in data:
        return data
    pieces = data.split(b"%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        byte = _HEX_PAIRS.get(piece[:2])
        if byte is None:
            out.append(b"%")
            out.append(piece)
        else:
            out.append(byte)
            out.append(piece[2:])
    return b"".join(out)


def _array_key(name: str) -> int | str:
    """PHP's symtable key: canonical decimal int64 strings become ints."""
    digits = name[1:] if name[:1] == "-" else name
    if (
        not digits
        or len(digits) > 19
        or not (digits.isascii() and digits.isdigit())
        or (digits[0] == "0" and len(name) > 1)
    ):
        return name
    number = int(name)
    return number if INT64_MIN <= number <= INT64_MAX else name


def _mangle(name: str, chars: str) -> str:
    for char in chars:
        if char in name:
            name = name.replace(char, "_")
    return name


_C_SPACE = " \t\n\v\f\r"  # C isspace() in the "C" locale


class _Name(NamedTuple):
    top: int | str
    path: list[int | str | None]  # None: append ("[]")
    too_deep: bool  # more bracket groups than max_input_nesting_level


def _split_name(name: str) -> _Name | None:
    """Turn a decoded variable name into its top-level key and index path.

    Returns None when the variable is dropped (empty name). A name nested too
    deep stops after MAX_INPUT_NESTING_LEVEL groups with ``too_deep`` set.
    """
    name = name.lstrip(" ")
    bracket = name.find("[")
    if bracket < 0:
        top = _mangle(name, ". ")
        return _Name(_array_key(top), [], False) if top else None
    top = _mangle(name[:bracket], ". ")
    if not top:
        return None
    path: list[int | str | None] = []
    end = len(name)
    pos = bracket  # at a "["
    while True:
        if len(path) == MAX_INPUT_NESTING_LEVEL:
            return _Name(_array_key(top), path, True)
        start = pos + 1
        # One C white-space character may stand before the "]" of an append.
        probe = start + 1 if start < end and name[start] in _C_SPACE else start
        if probe < end and name[probe] == "]":
            path.append(None)
            close = probe
        else:
            close = name.find("]", probe)
            if close < 0:
                # Not an index after all. At the first level the "[" and the
                # rest of the name become part of the plain top-level name.
                if not path:
                    top = f"{top}_{_mangle(name[start:], '. [')}"
                break
            path.append(_array_key(name[start:close]))
        pos = close + 1
        if pos >= end or name[pos] != "[":
            break
    return _Name(_array_key(top), path, False)


_Array = dict[int | str, Any]


class _Registry:
    """Builds the result, tracking each array's PHP "next free element"."""

    __slots__ = ("_next", "result")

    def __init__(self) -> None:
        self.result: _Array = {}
        # id(array) -> (next free int key, the array); holding the array keeps
        # its id from being reused while parsing.
        self._next: dict[int, tuple[int, _Array]] = {}

    def _note_int(self, array: _Array, key: int) -> None:
        entry = self._next.get(id(array))
        if entry is None or key >= entry[0]:
            self._next[id(array)] = (key + 1 if key < INT64_MAX else INT64_MAX, array)

    def _next_key(self, array: _Array) -> int | None:
        """The key an append would use, None when appending fails (PHP_INT_MAX taken)."""
        entry = self._next.get(id(array))
        key = 0 if entry is None else entry[0]
        return None if key in array else key

    def _append(self, array: _Array, value: Any) -> bool:
        key = self._next_key(array)
        if key is None:
            return False
        array[key] = value
        self._note_int(array, key)
        return True

    def _set(self, array: _Array, key: int | str, value: Any) -> None:
        if isinstance(key, int) and key not in array:
            self._note_int(array, key)
        array[key] = value

    def _append_fails_on(self, keys: list[int | str | None]) -> bool:
        """Would walking down ``keys`` (top first) hit an append that fails?"""
        array = self.result
        for key in keys:
            if key is None:
                # Past a successful append every array is new: nothing can fail.
                return self._next_key(array) is None
            existing = array.get(key)
            if not isinstance(existing, dict):
                return False  # a new array from here on
            array = existing
        return False

    def register(self, name: str, value: str) -> None:
        split = _split_name(name)
        if split is None:
            return
        if split.too_deep:
            # PHP builds the arrays level by level and, on finding one level too
            # many, removes the whole top-level variable. It never gets there
            # when an append on the way fails (the name is simply dropped).
            if not self._append_fails_on([split.top, *split.path[:-1]]):
                self.result.pop(split.top, None)
            return
        key: int | str | None = split.top
        array = self.result
        for index in split.path:
            if key is None:
                child: _Array = {}
                if not self._append(array, child):
                    return
            else:
                existing = array.get(key)
                if isinstance(existing, dict):
                    child = existing
                else:
                    child = {}
                    self._set(array, key, child)
            array = child
            key = index
        if key is None:
            self._append(array, value)
        else:
            self._set(array, key, value)


def parse_str(qs: str | bytes) -> dict[int | str, Any]:
    """Parse a form string exactly as PHP 8.2's ``parse_str($qs, $result)``.

    ``qs`` may be text (bytes recovered with UTF-8/surrogateescape) or the raw
    bytes. Keys are ``int`` or ``str``, values ``str`` or nested ``dict``.
    """
    data = qs.encode("utf-8", "surrogateescape") if isinstance(qs, str) else bytes(qs)
    nul = data.find(b"\0")
    if nul >= 0:
        data = data[:nul]
    registry = _Registry()
    for piece in data.split(b"&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition(b"=")
        name = _urldecode(raw_name)
        nul = name.find(b"\0")
        if nul >= 0:
            name = name[:nul]
        registry.register(_to_text(name), _to_text(_urldecode(raw_value)))
    return registry.result
