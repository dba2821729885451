"""The HTTP/1.1 connection: uvicorn's httptools protocol, with limits on what a client can
make a worker hold before anything is authenticated.

httptools has no limit of its own on a request's head and concatenates a header's pieces
as they arrive: one 100 MB header cost a worker 13 s of CPU. Here:

- A request's head (request line and headers) is at most :attr:`HttpProtocol.head_limit`
  bytes (64 KiB, as nginx and h11): past that the answer is 431 and the connection is
  closed. Feeding the parser at most that much bounds its work to ~60 ms even when the
  head arrives a byte at a time.
- A head must be complete within :attr:`~HttpProtocol.head_timeout` seconds of the
  connection opening or of its first byte, and a body within
  :attr:`~HttpProtocol.body_timeout` seconds of its head: otherwise 408 and the
  connection is closed. A connection that never sent a byte is just closed.
- A request the parser cannot read gets 400 *after* the answers to the requests read
  before it on the same connection (pipelining): uvicorn answered 400 at once, and the
  valid request sent just before the garbage was never answered.

These answers are the vendor's error envelope, as every other error of the API. The cost
is a few attribute updates per request and one timer per body (measured on
``bench/api_speed.py``: within its noise). Select it with
``uvicorn.run(..., http="cdrapi.server.protocol:HttpProtocol")``.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from cdrapi.protocol.response import error_body

__all__ = ["HttpProtocol"]

_feed = HttpToolsProtocol.data_received
_headers_complete = HttpToolsProtocol.on_headers_complete
_message_complete = HttpToolsProtocol.on_message_complete
_response_complete = HttpToolsProtocol.on_response_complete


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools connection with head limits, timeouts and ordered errors."""

    head_limit = 64 * 1024
    head_timeout = 5.0
    body_timeout = 30.0

    _in_body = False  # the current request's head is complete, its body is not
    _head_bytes = 0  # bytes received since the last request ended (or its head did)
    _timer: asyncio.TimerHandle | None = None
    _failure: tuple[int, str] | None = None  # the error to answer once earlier ones are

    # uvicorn's callbacks; the base class is called directly (no super()) on the hot path

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._failure is not None:
            return  # only the answers to the requests before the error are left to send
        if not self._in_body:
            head = self._head_bytes + len(data)
            if head > self.head_limit:
                self._oversized(data)
                return
            self._head_bytes = head
        _feed(self, data)
        if (
            self._timer is None
            and (self._in_body or self._head_bytes)
            and self._failure is None
            and not self.transport.is_closing()
        ):
            self._arm(self.body_timeout if self._in_body else self.head_timeout)

    def on_headers_complete(self) -> None:
        self._in_body, self._head_bytes = True, 0
        if self._timer is not None:
            self._disarm()
        _headers_complete(self)

    def on_message_complete(self) -> None:
        self._in_body, self._head_bytes = False, 0
        if self._timer is not None:
            self._disarm()
        _message_complete(self)

    def on_response_complete(self) -> None:
        if self._failure is None:
            _response_complete(self)
            return
        last = not self.pipeline  # no request read after the one just answered
        _response_complete(self)
        if last and not self.transport.is_closing():
            self._answer_failure()

    def send_400_response(self, msg: str) -> None:
        self._fail(400, "Bad request: the HTTP request cannot be parsed")

    # ours

    def _oversized(self, data: bytes) -> None:
        """Feed only what fits in the limit: 431 unless a head completes within it."""
        room = self.head_limit - self._head_bytes
        self._head_bytes = self.head_limit
        _feed(self, data[:room])
        if self._failure is not None or self.transport.is_closing():
            return
        if self._head_bytes >= self.head_limit:  # no head completed in the room
            limit = self.head_limit
            self._fail(431, f"Request header fields too large: the limit is {limit} bytes")
            return
        self.data_received(data[room:])

    def _arm(self, delay: float) -> None:
        self._timer = self.loop.call_later(delay, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._in_body:
            self._fail(408, f"Request timeout: the request's body did not arrive "
                       f"within {self.body_timeout:g} s")  # fmt: skip
        elif self._head_bytes:
            self._fail(408, f"Request timeout: the request's headers did not arrive "
                       f"within {self.head_timeout:g} s")  # fmt: skip
        elif not self._answers_pending():  # a connection that sent nothing: just hang up
            self.transport.close()

    def _answers_pending(self) -> bool:
        # self.cycle is the request read last: if it is answered, so are those before it.
        cycle = self.cycle
        return bool(self.pipeline) or (cycle is not None and not cycle.response_complete)

    def _fail(self, status: int, message: str) -> None:
        """Answer ``status`` and close, after the answers still owed on this connection."""
        self._disarm()
        self._failure = (status, message)
        cycle = self.cycle
        if self._in_body and cycle is not None:
            # This request's body is not coming: its application must not wait for it.
            queued = [entry for entry in self.pipeline if entry[0] is cycle]
            if queued:  # not started: drop it, answer once the requests before it are
                self.pipeline.remove(queued[0])
                self.flow.pause_reading()
            elif cycle.response_started and not cycle.response_complete:
                self.flow.pause_reading()  # it answered without the body: let it finish
            else:
                cycle.disconnected = True  # its receive() says http.disconnect
                cycle.message_event.set()
                self._answer_failure()
        elif self._answers_pending():
            self.flow.pause_reading()
        else:
            self._answer_failure()

    def _answer_failure(self) -> None:
        assert self._failure is not None
        status, message = self._failure
        body = error_body([message])
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(content))
        self.transport.close()
