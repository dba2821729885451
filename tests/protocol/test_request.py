"""Reading a request from its body's bytes, its Content-Type and its query string, with no
web framework (protocol/request.py, protocol/multipart.py).

The references are real: the ``php`` binary (``parse_str`` for form bodies; its built-in
web server's ``$_POST`` for multipart forms), and, for multipart bodies of every shape,
Starlette's ``MultiPartParser``, which read them until the protocol stopped using it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from cdrapi.protocol.errors import InvalidRequest, PayloadTooLarge
from cdrapi.protocol.multipart import MultipartError, form_fields
from cdrapi.protocol.request import MAX_BODY, check_body_size, read_params
from tests.conftest import free_port
from tests.protocol.conftest import PHP_SETTINGS, PhpOracle, _find_php
from tests.protocol.test_encoding import php_serialize

FORM_BODIES = [
    b"page=1&filters%5Bdate_between%5D%5B0%5D=2024-01-01+00%3A00%3A00"
    b"&filters%5Bdate_between%5D%5B1%5D=2024-01-31+23%3A59%3A59&api_hash=abc",
    b"page=2&filters[uniqueid][]=1704067200.3&filters[uniqueid][]=1704067200.4",
    b"a.b=1&c d=2&e[f.g]=3&+h=%20&i[]=&i[]=x&j[k]=1&j[k]=2",
    b"x=%E2%82%AC%C3%A9&%C3%A9=1&y=caf\xc3\xa9",
    b"&&=1&a&b=&=&c[=1&d]=2&e[[f]]=3",
    b"page=1;filters[x]=2",
]


def test_form_bodies_are_read_as_php_parse_str_whatever_the_content_type(
    php: PhpOracle,
) -> None:
    expected = php.parse_str(FORM_BODIES)
    for content_type in ("text/xml", "application/x-www-form-urlencoded", "text/plain", ""):
        for body, answer in zip(FORM_BODIES, expected, strict=True):
            assert php_serialize(read_params(body, content_type)) == answer, (content_type, body)


def test_an_empty_body_reads_the_query_string() -> None:
    query = b"page=2&filters[uniqueid]=1704067200.4"
    expected = {"page": "2", "filters": {"uniqueid": "1704067200.4"}}
    assert read_params(b"", "", query) == expected
    assert read_params(b" \r\n\t", "text/xml", query) == expected
    assert read_params(b"page=3", "text/xml", query) == {"page": "3"}  # a body wins
    assert read_params(b"", "application/json") == {}


def test_json_is_told_by_its_brace_or_its_content_type() -> None:
    assert read_params(b' {"page": 2}', "text/xml") == {"page": 2}
    assert read_params(b'{"n": 9223372036854775808}') == {"n": 9.223372036854776e18}
    with pytest.raises(InvalidRequest, match=r"^Invalid JSON"):
        read_params(b"page=1", "Application/JSON; charset=utf-8")


def test_a_body_over_one_mebibyte_is_413() -> None:
    check_body_size(MAX_BODY)
    read_params(b"pad=" + b"x" * (MAX_BODY - 4))
    for too_big in (
        lambda: check_body_size(MAX_BODY + 1),
        lambda: read_params(b"x" * MAX_BODY + b"x"),
    ):
        with pytest.raises(PayloadTooLarge) as caught:
            too_big()
        assert caught.value.status_code == 413
        assert caught.value.messages == ["Request body too large: the limit is 1048576 bytes"]


def multipart(parts: list[tuple[str, str]], boundary: str = "Xy9") -> bytes:
    """A multipart body of (Content-Disposition parameters, value) parts."""
    lines = [
        f"--{boundary}\r\nContent-Disposition: form-data; {d}\r\n\r\n{v}\r\n" for d, v in parts
    ]
    return ("".join(lines) + f"--{boundary}--\r\n").encode()


def test_the_multipart_boundary_is_read_as_sent() -> None:
    body = multipart([('name="page"', "2")], boundary="AbC")
    assert read_params(body, "multipart/form-data; boundary=AbC") == {"page": "2"}
    with pytest.raises(InvalidRequest):  # a lower-cased boundary is another one
        read_params(body, "multipart/form-data; boundary=abc")


# PHP's own reading of multipart forms: its built-in web server fills $_POST.

MULTIPART_FORMS = [
    [('name="page"', "2"), ('name="filters[uniqueid][]"', "1704067200.3")],
    [('name="filters[uniqueid][]"', "1"), ('name="filters[uniqueid][]"', "2")],
    [('name="a.b"', "1"), ('name="c d"', "2"), ('name="e[f.g]"', "3"), ('name="h"', "")],
    [('name="x"', "€ é"), ('name="é"', "1"), ('name="y"', "a+b%20c&d=e")],
    [('name="a%5Bb%5D"', "1"), ('name="k"', "1"), ('name="k"', "2"), ('name="l[m]"', "3")],
    [('name="upload"; filename="a.txt"', "file content"), ('name="page"', "3")],
    [('name="a[]"', "1"), ('name="a[x]"', "2"), ('name="a[]"', "3")],
]


@pytest.fixture(scope="module")
def php_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = _find_php()
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: the php CLI binary is not installed", pytrace=False)
        pytest.skip("the php CLI binary is not installed (set PHP_BINARY)")
    root = tmp_path_factory.mktemp("php")
    (root / "index.php").write_text("<?php echo serialize($_POST);")
    port = free_port()
    args = [binary, "-n"]
    for name, value in PHP_SETTINGS.items():
        args += ["-d", f"{name}={value}"]
    args += ["-S", f"127.0.0.1:{port}", "-t", str(root)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/index.php"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"php -S did not start: {args}") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_multipart_fields_are_registered_as_php_registers_them(php_server: str) -> None:
    content_type = "multipart/form-data; boundary=Xy9"
    with httpx.Client(timeout=10) as http:
        for parts in MULTIPART_FORMS:
            body = multipart(parts)
            answer = http.post(php_server, content=body, headers={"Content-Type": content_type})
            assert php_serialize(read_params(body, content_type)) == answer.content, parts


# Every shape of multipart body: the fields and errors Starlette's parser gave.


def starlette_fields(body: bytes, content_type: str) -> list[tuple[str, str]] | str:
    async def stream() -> AsyncIterator[bytes]:
        yield body

    async def parse() -> Any:
        parser = MultiPartParser(
            Headers({"content-type": content_type}), stream(), max_files=1000, max_fields=10_000
        )
        return await parser.parse()

    try:
        form = asyncio.run(parse())
    except MultiPartException as exc:
        return exc.message
    return [(k, v) for k, v in form.multi_items() if not isinstance(v, UploadFile)]


def our_fields(body: bytes, content_type: str) -> list[tuple[str, str]] | str:
    try:
        return form_fields(body, content_type)
    except MultipartError as exc:
        return str(exc)


BROKEN = [
    (b"--x\r\nContent-Disposition: form-data\r\n\r\nzz", "multipart/form-data; boundary=x"),
    (b"--x\r\n\r\nzz\r\n--x--", "multipart/form-data; boundary=x"),
    (b"zz", "multipart/form-data"),
    (b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1", "multipart/form-data; boundary=x"),
    (b"garbage\r\n--x--\r\n", "multipart/form-data; boundary=x"),
    (b"--x\r\nNoColon\r\n\r\n1\r\n--x--", "multipart/form-data; boundary=x"),
    (multipart([('name="a"', "1")]), "multipart/form-data; boundary=" + "B" * 300),
    (b"--x\nContent-Disposition: form-data; name=a\n\n1\n--x--", "multipart/form-data; boundary=x"),
    (multipart([('name="a"', "1")] * 10_001), "multipart/form-data; boundary=Xy9"),
    (multipart([('name="f"; filename="x"', "1")] * 1001), "multipart/form-data; boundary=Xy9"),
]


def test_broken_multipart_bodies_fail_as_they_did() -> None:
    for body, content_type in BROKEN:
        expected = starlette_fields(body, content_type)
        assert our_fields(body, content_type) == expected, (body[:80], content_type)
    assert isinstance(our_fields(*BROKEN[0]), str)  # errors are among the cases


names = st.sampled_from(['"a"', "b", '"c[]"', '"d[e]"', '"\xe9"', '""', '"q\\"r"', '"x y.z"'])
dispositions = st.builds(
    lambda name, extra: "; ".join(["form-data", f"name={name}", *extra]),
    names,
    st.lists(
        st.sampled_from(['filename="f.txt"', 'filename=""', "name*=UTF-8''x", "junk"]), max_size=2
    ),
)
disposition_names = st.sampled_from(
    ["Content-Disposition", "content-disposition", "CONTENT-DISPOSITION"]
)
others = st.tuples(st.sampled_from(["Content-Type", "X-A"]), st.sampled_from(["text/plain", "x"]))
part_headers = st.builds(
    lambda name, disposition, extra, keep: [(name, disposition)] * keep + extra,
    disposition_names,
    dispositions,
    st.lists(others | st.tuples(disposition_names, dispositions), max_size=2),
    st.integers(0, 9).map(lambda n: int(n > 0)),  # nine parts in ten have a disposition
)
values = st.binary(max_size=12) | st.text(alphabet="ab\xe9\u20ac\r\n-=&+%[] ", max_size=12).map(
    str.encode
)
part = st.tuples(part_headers, values)
charsets = st.sampled_from(
    ["", "; charset=utf-8", "; charset=latin-1", "; charset=nope", "; charset=UTF-16"]
)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(part, max_size=4),
    charset=charsets,
    ending=st.sampled_from(["--\r\n", "--", "\r\n", "", "--\r\nepilogue"]),
    cut=st.integers(min_value=0, max_value=8),
)
def test_multipart_bodies_read_as_starlettes_parser_read_them(
    parts: list[tuple[list[tuple[str, str]], bytes]], charset: str, ending: str, cut: int
) -> None:
    chunks = []
    for headers, value in parts:
        head = "".join(f"{name}: {text}\r\n" for name, text in headers)
        chunks.append(f"--Bd\r\n{head}\r\n".encode("latin-1") + value + b"\r\n")
    body = b"".join(chunks) + b"--Bd" + ending.encode()
    body = body[: len(body) - cut] if cut else body
    content_type = f"multipart/form-data; boundary=Bd{charset}"
    assert our_fields(body, content_type) == starlette_fields(body, content_type)
