"""http_build_query / parse_str: hand-written rules and differential tests against php.

Every expected value below was produced by PHP 8.2; the ``*_match_php`` tests
check them against the binary again, so the hand-written tables and the oracle
can never drift apart.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cdrapi.protocol.encoding import http_build_query, parse_str

from .conftest import PhpOracle

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DEEP63 = "[y]" * 63
DEEP64 = "[y]" * 64


def php_serialize(value: Any) -> bytes:
    """PHP's ``serialize()`` of a parse_str result: key types, order and byte lengths."""
    out: list[bytes] = []

    def emit(item: Any) -> None:
        if isinstance(item, dict):
            out.append(b"a:%d:{" % len(item))
            for key, child in item.items():
                if isinstance(key, int):
                    out.append(b"i:%d;" % key)
                else:
                    emit(key)
                emit(child)
            out.append(b"}")
        elif isinstance(item, str):
            data = item.encode("utf-8", "surrogateescape")
            out.append(b's:%d:"%s";' % (len(data), data))
        else:
            raise TypeError(f"parse_str produced a {type(item).__name__}")

    emit(value)
    return b"".join(out)


def nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"y": leaf}
    return leaf


# ---------------------------------------------------------------------------
# http_build_query: hand-written rules

HBQ_CASES: list[tuple[str, Any, str]] = [
    ("empty", {}, ""),
    ("empty list", [], ""),
    ("order kept", {"b": "1", "a": "2", "c": "3"}, "b=1&a=2&c=3"),
    ("list keys", ["x", "y"], "0=x&1=y"),
    ("tuple keys", ("x", "y"), "0=x&1=y"),
    ("int keys", {5: "a", -3: "b", 0: "c"}, "5=a&-3=b&0=c"),
    ("bools", {"t": True, "f": False}, "t=1&f=0"),
    (
        "ints",
        {"a": 0, "b": -7, "c": INT64_MAX, "d": INT64_MIN},
        "a=0&b=-7&c=9223372036854775807&d=-9223372036854775808",
    ),
    (
        "int past int64 is a PHP float",
        {"a": 2**63, "b": -(2**64)},
        "a=9.2233720368548E%2B18&b=-1.844674407371E%2B19",
    ),
    ("int past double range", {"a": 10**400, "b": -(10**400)}, "a=INF&b=-INF"),
    ("null left out", {"a": None, "b": "1", "c": None}, "b=1"),
    ("empty arrays left out", {"a": [], "b": "1", "c": {}, "d": [[], {"x": None}]}, "b=1"),
    ("only nulls", {"a": None, "b": [None]}, ""),
    ("empty string kept", {"a": ""}, "a="),
    ("nested keys", {"a": {"b": [True]}}, "a%5Bb%5D%5B0%5D=1"),
    (
        "nested list",
        {"d": ["2024-01-01 00:00:00", "x"]},
        "d%5B0%5D=2024-01-01+00%3A00%3A00&d%5B1%5D=x",
    ),
    ("nested int keys", {"a": {7: "x", -1: "y"}}, "a%5B7%5D=x&a%5B-1%5D=y"),
    ("keys encoded", {"x y": {"k[z]": "v"}, "a.b": "1"}, "x+y%5Bk%5Bz%5D%5D=v&a.b=1"),
    ("unreserved", {"a": "AZaz09-_."}, "a=AZaz09-_."),
    ("space is plus", {"a": "a b"}, "a=a+b"),
    (
        "reserved",
        {"a": "~*!'()+&=%/?#[]@,;:$"},
        "a=%7E%2A%21%27%28%29%2B%26%3D%25%2F%3F%23%5B%5D%40%2C%3B%3A%24",
    ),
    ("controls", {"a": "\x00\t\n\x7f"}, "a=%00%09%0A%7F"),
    ("utf-8 upper hex", {"é": "€"}, "%C3%A9=%E2%82%AC"),
    ("raw bytes via surrogateescape", {"a": "\udcff\udcc3("}, "a=%FF%C3%28"),
    ("zero", {"a": 0.0, "b": -0.0}, "a=0&b=-0"),
    ("precision 14", {"a": 0.1 + 0.2}, "a=0.3"),
    ("integral float", {"a": 100.0, "b": 1.5, "c": -1.5}, "a=100&b=1.5&c=-1.5"),
    ("1e20", {"a": 1e20}, "a=1.0E%2B20"),
    ("1e15", {"a": 1e15}, "a=1.0E%2B15"),
    ("1e14 already exponent", {"a": 1e14}, "a=1.0E%2B14"),
    ("14 digits fixed", {"a": 99999999999999.0}, "a=99999999999999"),
    ("rounds up to exponent", {"a": 99999999999999.9}, "a=1.0E%2B14"),
    (
        "ties to even",
        {"a": 123456789012345.0, "b": 123456789012335.0},
        "a=1.2345678901234E%2B14&b=1.2345678901234E%2B14",
    ),
    (
        "15-digit tie rounded down keeps zeros",
        [100000000000005.0, -332655762769205.0, 100000000000025.0],
        "0=1.0000000000000E%2B14&1=-3.3265576276920E%2B14&2=1.0000000000002E%2B14",
    ),
    (
        "15-digit tie rounded up",
        [100000000000015.0, 999999999999995.0],
        "0=1.0000000000002E%2B14&1=1.0E%2B15",
    ),
    (
        "15-digit non-ties strip zeros",
        [100000000000001.0, 100000000000004.0, 120000000000003.0, 100000000000006.0],
        "0=1.0E%2B14&1=1.0E%2B14&2=1.2E%2B14&3=1.0000000000001E%2B14",
    ),
    (
        "16-digit tie strips zeros",
        [1000000000000050.0, 12345678901234.5],
        "0=1.0E%2B15&1=12345678901234",
    ),
    ("0.1", {"a": 0.1}, "a=0.1"),
    ("0.0001 fixed", {"a": 0.0001, "b": 0.0001234}, "a=0.0001&b=0.0001234"),
    ("1e-5 exponent", {"a": 1e-5, "b": 2.5e-5}, "a=1.0E-5&b=2.5E-5"),
    ("1e-7", {"a": 1e-7}, "a=1.0E-7"),
    (
        "large int as float",
        {"a": 2.0**63, "b": 12345678901234567.0},
        "a=9.2233720368548E%2B18&b=1.2345678901235E%2B16",
    ),
    (
        "extremes",
        {"a": 5e-324, "b": 1.7976931348623157e308},
        "a=4.9406564584125E-324&b=1.7976931348623E%2B308",
    ),
    (
        "inf nan",
        {"a": math.inf, "b": -math.inf, "c": math.nan, "d": -math.nan},
        "a=INF&b=-INF&c=NAN&d=NAN",
    ),
    ("float in list", {"a": [1e100, -1e-300]}, "a%5B0%5D=1.0E%2B100&a%5B1%5D=-1.0E-300"),
]


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in HBQ_CASES], ids=[c[0] for c in HBQ_CASES]
)
def test_http_build_query_rules(value: Any, expected: str) -> None:
    assert http_build_query(value) == expected


def test_http_build_query_rules_match_php(php: PhpOracle) -> None:
    got = php.http_build_query([value for _, value, _ in HBQ_CASES])
    assert got == [expected for _, _, expected in HBQ_CASES]


@pytest.mark.parametrize("bad", [{"a": b"bytes"}, {"a": object()}, {1.5: "x"}, "a=1", 5])
def test_http_build_query_rejects_non_php_values(bad: Any) -> None:
    with pytest.raises(TypeError):
        http_build_query(bad)


# ---------------------------------------------------------------------------
# parse_str: hand-written rules

PARSE_CASES: list[tuple[str, str | bytes, dict[int | str, Any]]] = [
    ("empty", "", {}),
    ("simple", "a=1&b=2", {"a": "1", "b": "2"}),
    ("no value", "a&b=", {"a": "", "b": ""}),
    ("first = splits", "a==1=2", {"a": "=1=2"}),
    ("empty pieces skipped", "&&a=1&&&b=2&", {"a": "1", "b": "2"}),
    ("empty name dropped", "=1&a=2&=", {"a": "2"}),
    ("plus is space", "a+b=c+d", {"a_b": "c d"}),
    ("percent decoding", "a=%41%2b%2B%26%3d%C3%A9", {"a": "A++&=é"}),
    (
        "invalid percent kept",
        "%zz=%4g%2&%=%&b=%%41&c=%4%41",
        {"%zz": "%4g%2", "%": "%", "b": "%A", "c": "%4A"},
    ),
    ("invalid utf-8 kept as bytes", "a=%FF%C3%28&%FE=x", {"a": "\udcff\udcc3(", "\udcfe": "x"}),
    ("raw non-ascii", "é=€", {"é": "€"}),
    ("raw invalid byte", b"a=\xff", {"a": "\udcff"}),
    ("NUL ends the input", "a=1\x00&b=2", {"a": "1"}),
    ("encoded NUL ends the name", "a%00b=1&%00x=2", {"a": "1"}),
    ("encoded NUL kept in value", "c=x%00y", {"c": "x\x00y"}),
    ("encoded NUL ends a bracket name", "a[x%00y]=1", {"a_x": "1"}),
    ("leading spaces skipped", "  a=1&%20%20b=2&+c=3", {"a": "1", "b": "2", "c": "3"}),
    ("only leading spaces", "  =1&+=2", {}),
    ("tab is not skipped", "%09a=1", {"\ta": "1"}),
    ("dot and space become _", "a.b=1&a c=2&x y.z=3", {"a_b": "1", "a_c": "2", "x_y_z": "3"}),
    ("mangling only before [", "a.b[c.d e]=1", {"a_b": {"c.d e": "1"}}),
    ("encoded brackets nest", "a%5Bb%5D=6", {"a": {"b": "6"}}),
    ("nesting", "a[b][0]=x&a[b][1]=y", {"a": {"b": {0: "x", 1: "y"}}}),
    ("append", "a[]=1&a[]=2", {"a": {0: "1", 1: "2"}}),
    (
        "append after largest",
        "a[]=1&a[]=2&a[5]=3&a[]=4&a[2]=5&a[]=6",
        {"a": {0: "1", 1: "2", 5: "3", 6: "4", 2: "5", 7: "6"}},
    ),
    ("append after negative", "a[-5]=x&a[-7]=z&a[]=y", {"a": {-5: "x", -7: "z", -4: "y"}}),
    (
        "append after min",
        "a[-9223372036854775808]=x&a[]=y",
        {"a": {INT64_MIN: "x", INT64_MIN + 1: "y"}},
    ),
    (
        "append up to max",
        "a[9223372036854775806]=x&a[]=y&a[]=z",
        {"a": {INT64_MAX - 1: "x", INT64_MAX: "y"}},
    ),
    ("append past max dropped", "a[9223372036854775807]=x&a[]=y&a[][b]=z", {"a": {INT64_MAX: "x"}}),
    (
        "append ignores string keys",
        "a[x]=1&a[]=2&a[7x]=3&a[]=4",
        {"a": {"x": "1", 0: "2", "7x": "3", 1: "4"}},
    ),
    (
        "nested appends",
        "a[][]=1&a[][x]=2&a[b][]=3",
        {"a": {0: {0: "1"}, 1: {"x": "2"}, "b": {0: "3"}}},
    ),
    (
        "int keys",
        "a[0]=x&a[-1]=y&a[9223372036854775807]=z&a[-9223372036854775808]=w",
        {"a": {0: "x", -1: "y", INT64_MAX: "z", INT64_MIN: "w"}},
    ),
    (
        "non-canonical keys stay str",
        "a[0123]=1&a[-0]=2&a[00]=3&a[%2B1]=4&a[1 ]=5&a[ 1]=6"
        "&a[9223372036854775808]=7&a[-9223372036854775809]=8&a[1.0]=9&a[]=10",
        {
            "a": {
                "0123": "1",
                "-0": "2",
                "00": "3",
                "+1": "4",
                "1 ": "5",
                " 1": "6",
                "9223372036854775808": "7",
                "-9223372036854775809": "8",
                "1.0": "9",
                0: "10",
            }
        },
    ),
    ("top-level int key", "5=a&-1=b&05=c", {5: "a", -1: "b", "05": "c"}),
    ("int and str keys meet", "a[1]=x&a[01]=y&a[1]=z", {"a": {1: "z", "01": "y"}}),
    (
        "one white-space char appends",
        "a[]=1&a[ ]=2&a[%09]=3&a[%0A][]=4&a[%0B]=5&a[%0C]=6&a[%0D]=7",
        {"a": {0: "1", 1: "2", 2: "3", 3: {0: "4"}, 4: "5", 5: "6", 6: "7"}},
    ),
    (
        "other white space is a key",
        "a[  ]=1&a[ x]=2&a[x ]=3&a[%1C]=4&a[%A0]=5&a[ [b]=6&a[%09%09]=7",
        {
            "a": {
                "  ": "1",
                " x": "2",
                "x ": "3",
                "\x1c": "4",
                "\udca0": "5",
                " [b": "6",
                "\t\t": "7",
            }
        },
    ),
    ("white space then unmatched", "a[ b=1&c[ =2", {"a__b": "1", "c__": "2"}),
    ("unmatched [ at first level", "a[b=1&a[b.c d[e=2", {"a_b": "1", "a_b_c_d_e": "2"}),
    ("unmatched [ after mangled top", "g.h i[j=3", {"g_h_i_j": "3"}),
    ("unmatched [ only", "[abc=1&[=2", {}),
    ("unmatched [ deeper is ignored", "k[l][m=4&n[][o=5", {"k": {"l": "4"}, "n": {0: "5"}}),
    ("text after ] ignored", "p[q]r=6&p[s]t[u]=7", {"p": {"q": "6", "s": "7"}}),
    ("stray ]", "a]=1&a[b]]=2", {"a]": "1", "a": {"b": "2"}}),
    ("[ inside index", "a[[b]=3&a[b][[c]]=4", {"a": {"[b": "3", "b": {"[c": "4"}}}),
    ("empty top with brackets", "[v]=8&[]=9", {}),
    ("duplicate wins, first position kept", "a=1&b=2&a=3", {"a": "3", "b": "2"}),
    ("scalar replaced by array in place", "a=1&b=2&a[x]=3", {"a": {"x": "3"}, "b": "2"}),
    ("array replaced by scalar", "a[x]=1&a=2&a[y]=3", {"a": {"y": "3"}}),
    ("nested scalar replaced", "c[x]=1&c[x][y]=2", {"c": {"x": {"y": "2"}}}),
    ("nested array replaced", "c[x][y]=1&c[x]=2", {"c": {"x": "2"}}),
    ("64 levels allowed", "a[x]=1&a" + DEEP63 + "=2", {"a": {"x": "1", "y": nested(62, "2")}}),
    ("64 levels exactly", "a" + DEEP64 + "=2", {"a": nested(64, "2")}),
    ("65 levels drop the variable", "a[x]=1&b=0&a" + DEEP64 + "[z]=2", {"b": "0"}),
    ("unmatched [ counts as a level", "a[x]=1&a" + DEEP64 + "[z=2&a[q]=5", {"a": {"q": "5"}}),
    ("65 appends", "a" + "[]" * 65 + "=1&b=2", {"b": "2"}),
    ("too deep removes an int top key", "5=x&5" + DEEP64 + "[z]=2", {}),
    (
        "too deep after a failing append: only dropped",
        "a[9223372036854775807]=x&a[]" + DEEP64 + "=2",
        {"a": {INT64_MAX: "x"}},
    ),
    (
        "too deep after a failing nested append",
        "a[b][9223372036854775807]=x&a[b][]" + DEEP63 + "=2",
        {"a": {"b": {INT64_MAX: "x"}}},
    ),
    (
        "too deep, failing append past the limit",
        "a[9223372036854775807]=x&a" + DEEP64 + "[]=2&c=3",
        {"c": "3"},
    ),
    ("too deep below a scalar", "a[9223372036854775807]=x&a[y]=s&a[y][]" + DEEP63 + "=2", {}),
    ("text after 64th group is fine", "a" + DEEP64 + "x[z]=2", {"a": nested(64, "2")}),
]


@pytest.mark.parametrize(
    ("qs", "expected"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES]
)
def test_parse_str_rules(qs: str | bytes, expected: dict[int | str, Any]) -> None:
    result = parse_str(qs)
    assert result == expected
    assert php_serialize(result) == php_serialize(expected)  # key types and order too


def test_parse_str_rules_match_php(php: PhpOracle) -> None:
    got = php.parse_str([qs for _, qs, _ in PARSE_CASES])
    for (name, _, expected), answer in zip(PARSE_CASES, got, strict=True):
        assert answer == php_serialize(expected), name


def test_parse_str_returns_plain_dicts_and_strs() -> None:
    def check(value: Any) -> None:
        if type(value) is dict:
            for key, child in value.items():
                assert type(key) in (int, str)
                check(child)
        else:
            assert type(value) is str

    check(parse_str("a[]=1&a[b][c]=2&5=x&d=&e[-1][]=%FF"))


def test_parse_str_has_no_input_vars_cap() -> None:
    """PHP's max_input_vars (1000) is left to the HTTP layer."""
    result = parse_str("&".join(f"v{i}={i}" for i in range(5000)))
    assert len(result) == 5000


@pytest.mark.parametrize(
    "qs",
    [
        "a" + "[" * 500_000,
        "a" + "[]" * 250_000,
        "a" + "[x" * 250_000,
        "a[" + "]" * 500_000,
        "%" * 500_000,
        "a=" + "%4" * 250_000,
        "&".join(["a[]=1"] * 50_000),
        "&".join(["x[y]=1"] * 50_000),
        "." * 500_000 + "=1",
    ],
    ids=lambda qs: qs[:12],
)
def test_parse_str_linear_on_hostile_input(qs: str) -> None:
    start = time.perf_counter()
    parse_str(qs)
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------------------
# Generators

TEXT_PIECES = [
    "",
    "a",
    " ",
    "+",
    "%",
    "&",
    "=",
    "[",
    "]",
    ".",
    "~",
    "*",
    "é",
    "€",
    "\x00",
    "\udcff",
    "\udcc3",
    "0",
    "-1",
]

php_text = st.one_of(
    st.text(max_size=8),
    st.binary(max_size=8).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.lists(st.sampled_from(TEXT_PIECES), max_size=5).map("".join),
)

tie_floats = st.one_of(
    st.integers(10**13, 10**14 - 1).map(lambda n: float(n * 10 + 5)),  # 15 digits
    st.integers(10**12, 10**13 - 1).map(lambda n: float(n * 100 + 50)),
    st.integers(10**14, 10**16).map(lambda n: float(n * 10 + 5)),
    st.integers(10**12, 10**14 - 1).map(lambda n: (n * 10 + 5) / 10),  # exact halves
)
decimal_floats = st.builds(
    lambda m, e: float(f"{m}e{e}"), st.integers(0, 10**16), st.integers(-330, 310)
)
php_float = st.one_of(
    st.floats(),
    st.floats(allow_subnormal=True, width=32),
    tie_floats,
    decimal_floats,
    st.integers(INT64_MIN, INT64_MAX).map(float),
    st.sampled_from(
        [
            0.0,
            -0.0,
            0.1,
            0.30000000000000004,
            1e14,
            1e15,
            1e-4,
            1e-5,
            99999999999999.9,
            math.inf,
            -math.inf,
            math.nan,
        ]
    ),
)
php_int = st.one_of(
    st.integers(-1000, 1000),
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(-(2**70), 2**70),
    st.sampled_from([INT64_MIN, INT64_MAX, 2**63, -(2**63) - 1, 10**400]),
)
php_scalar = st.one_of(st.none(), st.booleans(), php_int, php_float, php_text)
php_key = st.one_of(st.integers(-3, 10), st.integers(INT64_MIN, INT64_MAX), php_text)


def php_dict(pairs: list[tuple[int | str, Any]]) -> dict[int | str, Any]:
    """A dict PHP can hold too: no two keys that PHP would merge (5 and "5")."""
    seen: set[int | str] = set()
    out: dict[int | str, Any] = {}
    for key, value in pairs:
        form = key if isinstance(key, int) else _canonical(key)
        if form not in seen:
            seen.add(form)
            out[key] = value
    return out


def _canonical(key: str) -> int | str:
    digits = key[1:] if key[:1] == "-" else key
    if digits.isascii() and digits.isdigit() and not (digits[0] == "0" and len(key) > 1):
        number = int(key)
        if INT64_MIN <= number <= INT64_MAX:
            return number
    return key


def arrays(
    keys: st.SearchStrategy[int | str], leaves: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, max_size=3).map(tuple),
            st.lists(st.tuples(keys, children), max_size=4).map(php_dict),
        )

    return containers(st.recursive(leaves, containers, max_leaves=12))


php_arrays = arrays(php_key, php_scalar)

BATCH_MIN, BATCH_MAX = 40, 60  # cases per php round trip
# No shrinking: a failure already names the mismatching cases of its batch,
# while shrinking a batch of 50 structures takes minutes.
DIFFERENTIAL = settings(
    max_examples=55,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def mismatches(cases: list[Any], ours: list[Any], theirs: list[Any]) -> list[tuple[Any, Any, Any]]:
    return [(c, o, t) for c, o, t in zip(cases, ours, theirs, strict=True) if o != t][:5]


# ---------------------------------------------------------------------------
# Differential: http_build_query

UNSAFE_KEY_CHARS = frozenset(" .[]\x00")


def is_plain_key(key: str) -> bool:
    """A key parse_str reads back as itself: ``a[ ]`` would append, ``a.b`` become ``a_b``..."""
    return key not in ("", "\t", "\n", "\v", "\f", "\r") and UNSAFE_KEY_CHARS.isdisjoint(key)


def has_plain_keys(value: Any, depth: int = 0) -> bool:
    """True when parse_str gives every key back unchanged (no mangling, no append)."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return True
    if depth >= 60:
        return False
    return all(
        (isinstance(key, int) or is_plain_key(key)) and has_plain_keys(child, depth + 1)
        for key, child in items
    )


@DIFFERENTIAL
@given(st.lists(php_arrays, min_size=BATCH_MIN, max_size=BATCH_MAX))
def test_http_build_query_matches_php(php: PhpOracle, cases: list[Any]) -> None:
    ours = [http_build_query(case) for case in cases]
    assert not mismatches(cases, ours, php.http_build_query(cases))

    # Round trip through parse_str, hostile keys included:
    # http_build_query(parse_str(http_build_query(x))) is what the server signs.
    again = [http_build_query(parse_str(query)) for query in ours]
    assert not mismatches(cases, again, php.round_trip(cases))
    for case, query, requery in zip(cases, ours, again, strict=True):
        if has_plain_keys(case):
            assert requery == query, case


@DIFFERENTIAL
@given(st.lists(php_float, min_size=BATCH_MIN, max_size=BATCH_MAX))
def test_float_formatting_matches_php(php: PhpOracle, floats: list[float]) -> None:
    cases = [{"f": f} for f in floats]
    ours = [http_build_query(case) for case in cases]
    assert not mismatches(cases, ours, php.http_build_query(cases))


# ---------------------------------------------------------------------------
# Differential: parse_str

NAME_TOKENS = [
    "a", "b", "a", "x", "_", "é", "\udcff", "0", "5", "-1", "-0", "00", "0123",
    "9223372036854775807", "9223372036854775806", "9223372036854775808",
    "-9223372036854775808", "-9223372036854775809",
    "[", "]", "[]", "[]", "[0]", "[a]", "[b]", "[-3]", "[9223372036854775807]", "][", "[[", "]]",
    ".", " ", "+", "%", "%2", "%zz", "%5B", "%5D", "%5b", "%5d", "%2E", "%20", "%00", "%26",
    "%3D", "%2B", "%FF", "%C3%A9", "%E2%82", "=", "\t", "~", "*", "\x00",
    "%09", "%0A", "%0B", "%0C", "%0D", "%A0", "%85", "[ ]", "[%09]", "[ x]",
    DEEP63, DEEP64, "[]" * 63, "[x" * 3,
]  # fmt: skip
VALUE_TOKENS = [
    "",
    "1",
    "a b",
    "+",
    "%",
    "%4",
    "%41",
    "%zz",
    "%00",
    "%FF",
    "%C3%A9",
    "=",
    "é",
    "\udcc3",
    "[]",
]

names = st.lists(st.sampled_from(NAME_TOKENS), min_size=0, max_size=8).map("".join)
values = st.one_of(
    st.lists(st.sampled_from(VALUE_TOKENS), max_size=4).map("".join), st.text(max_size=5)
)
pieces = st.one_of(
    st.tuples(names, st.sampled_from(["=", "", "=="]), values).map("".join),
    st.sampled_from(
        ["", "a=1", "a[]=2", "a[x]=3", "a=4", "a[x][y]=5", "5=6", "a[9223372036854775807]=7"]
    ),
)
query_strings = st.one_of(
    st.lists(pieces, max_size=8).map("&".join),
    st.text(alphabet="ab[]=&.% +05-", max_size=30),
)


@DIFFERENTIAL
@given(st.lists(query_strings, min_size=BATCH_MIN, max_size=BATCH_MAX))
def test_parse_str_matches_php(php: PhpOracle, cases: list[str]) -> None:
    ours = [php_serialize(parse_str(qs)) for qs in cases]
    assert not mismatches(cases, ours, php.parse_str(cases))


def test_parse_str_accepts_bytes_and_text_alike() -> None:
    raw = b"a[\xc3\xa9]=\xff%FE&b=%E2%82%AC"
    assert parse_str(raw) == parse_str(raw.decode("utf-8", "surrogateescape"))
    assert parse_str(raw) == {"a": {"é": "\udcff\udcfe"}, "b": "€"}
