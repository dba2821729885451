"""The text fields of a ``multipart/form-data`` body (SPEC §2), without a web framework.

The body is read with ``python_multipart``, the parser under Starlette's, by the rules of
Starlette's ``MultiPartParser`` (which read these bodies until the protocol layer stopped
depending on Starlette), so that the same body gives the same fields and the same errors:

- the Content-Type's ``charset`` (UTF-8 when absent, latin-1 when unknown) decodes names
  and values; a name or value it cannot decode is read as latin-1;
- every part needs a Content-Disposition ``name``; a part with a ``filename`` is a file,
  which is not a field (PHP puts files in ``$_FILES``, not in the parameters);
- at most 1,000 files and 10,000 fields, a field's value at most 1 MiB.
"""

from __future__ import annotations

import codecs

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = ["MAX_FIELDS", "MAX_FILES", "MultipartError", "form_fields"]

MAX_FILES = 1000
MAX_FIELDS = 10_000
_MAX_PART = 1 << 20


class MultipartError(Exception):
    """A multipart body that cannot be read; the message says why."""


def form_fields(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """The (name, value) of each text field of ``body``, in order.

    ``content_type`` is the Content-Type header as sent: it holds the boundary, which is
    case-sensitive. Raises :class:`MultipartError`.
    """
    return _Fields(content_type).read(body)


def _decode(data: bytes | bytearray, charset: str) -> str:
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


class _Fields:
    """``python_multipart``'s callbacks, collecting the fields of one body."""

    def __init__(self, content_type: str) -> None:
        _, options = parse_options_header(content_type)
        charset = options.get(b"charset", b"utf-8").decode("latin-1")
        try:
            self._charset = codecs.lookup(charset).name
        except LookupError:
            self._charset = "latin-1"
        try:
            self._boundary = options[b"boundary"]
        except KeyError:
            raise MultipartError("Missing boundary in multipart.") from None
        self._fields: list[tuple[str, str]] = []
        self._files = self._field_count = 0
        self._header_name = self._header_value = b""
        self._disposition: bytes | None = None
        self._name = ""
        self._data: bytearray | None = None  # the current field's value; None in a file

    def read(self, body: bytes) -> list[tuple[str, str]]:
        try:
            parser = MultipartParser(
                self._boundary,
                {
                    "on_part_begin": self._part_begin,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_value_data,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                },
            )
            parser.write(body)
            parser.finalize()
        except FormParserError as exc:
            raise MultipartError("Invalid multipart data.") from exc
        return self._fields

    def _part_begin(self) -> None:
        self._disposition, self._name, self._data = None, "", bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._data is None:
            return  # a file's content
        if len(self._data) + end - start > _MAX_PART:
            raise MultipartError(f"Part exceeded maximum size of {_MAX_PART // 1024}KB.")
        self._data += data[start:end]

    def _part_end(self) -> None:
        if self._data is not None:
            self._fields.append((self._name, _decode(self._data, self._charset)))

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        try:
            self._name = _decode(options[b"name"], self._charset)
        except KeyError:
            message = 'The Content-Disposition header field "name" must be provided.'
            raise MultipartError(message) from None
        if b"filename" in options:
            self._files += 1
            if self._files > MAX_FILES:
                raise MultipartError(f"Too many files. Maximum number of files is {MAX_FILES}.")
            self._data = None
        else:
            self._field_count += 1
            if self._field_count > MAX_FIELDS:
                raise MultipartError(f"Too many fields. Maximum number of fields is {MAX_FIELDS}.")
            self._data = bytearray()
