"""A blocking request/response session over one WebSocket (order entry over a venue's
WebSocket API: Binance spot ``ws-api/v3``, Bybit ``/v5/trade``).

The session is venue-neutral: a ``WsEntryProtocol`` (from the venue's ``order_entry``) says
which frames open the session (Bybit's ``auth``; none for Binance, which signs each request),
how to read an answer's id, and how long the venue keeps a silent socket.

Delivery rules (order entry must never be doubled):

- the socket is opened lazily, on the first request and on the next one after a loss; a
  failed connect or logon raises ``RequestNotSent``: nothing of the request left the
  process, so the caller may send it another way;
- a socket idle longer than the venue tolerates (``max_idle_s``) is replaced *before* the
  request is sent, and frames waiting on it (pings, late answers, a close) are read first,
  so a socket the venue already closed is found before, not after, the send;
- once the first byte of the request may have been written, any failure (a send error, a
  lost socket, no matching answer within ``timeout_s``) raises ``AnswerLost``: the request
  may have reached the venue, and the caller resolves it by query, never by re-sending.

Frames that are not the awaited answer (pings are answered by websocket-client, late
answers to requests that timed out, pushes) are counted and ignored.
"""

from __future__ import annotations

import select
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
import websocket
from loguru import logger

DRAIN_MAX_FRAMES = 1000  # frames read before a send at most (bounds the pre-send drain)
_decode = msgspec.json.Decoder().decode


class RequestNotSent(Exception):
    """The session could not be opened: the request was not sent at all."""


class AnswerLost(Exception):
    """The request may have reached the venue, but no answer came back (timeout, socket
    lost during the request): its outcome is unknown."""


class WsEntryProtocol(Protocol):
    """What the session needs to know of a venue's order-entry WebSocket."""

    #: Replace a socket idle longer than this before sending on it (the venue may have
    #: closed it: Binance after 1 min without pongs, Bybit after ~10 min without data).
    max_idle_s: float

    def open_frames(self, now_ms: int) -> list[tuple[str, bytes]]:
        """Frames to send after connecting, each with the answer key it waits for."""
        ...

    def open_error(self, answer: Any) -> str | None:
        """None when an answer to an opening frame says the session is ready, else why not."""
        ...

    def answer_key(self, message: Any) -> str | None:
        """The key of a decoded frame that answers a request (its id), else None."""
        ...


class Socket(Protocol):
    """The few calls the session makes on a WebSocket (websocket-client's, or a fake)."""

    def send(self, data: bytes) -> None: ...

    def recv(self, timeout: float) -> bytes | str | None:
        """One frame: its data, or None for a control frame (ping, pong); raises
        TimeoutError when none arrives in time, ConnectionError when the socket is closed
        or broken."""
        ...

    def readable(self) -> bool: ...

    def close(self) -> None: ...


class _WsClientSocket:
    """websocket-client's blocking ``WebSocket`` behind ``Socket``."""

    def __init__(self, url: str, connect_timeout: float) -> None:
        ws = websocket.WebSocket(skip_utf8_validation=True, enable_multithread=False)
        ws.settimeout(connect_timeout)
        try:
            ws.connect(url)
        except (OSError, websocket.WebSocketException) as exc:
            ws.shutdown()
            raise ConnectionError(f"connect failed: {type(exc).__name__}") from exc
        if ws.sock is not None:
            ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._ws = ws
        self._send_timeout = connect_timeout

    def send(self, data: bytes) -> None:
        # recv() leaves whatever wait it last had on the socket.
        self._ws.settimeout(self._send_timeout)
        try:
            # Text frames: both venues read JSON text; pings are answered inside recv().
            self._ws.send(data.decode(), websocket.ABNF.OPCODE_TEXT)
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionError(type(exc).__name__) from exc

    def recv(self, timeout: float) -> bytes | str | None:
        self._ws.settimeout(max(timeout, 0.001))
        try:
            # Control frames come back too (pings are answered in there): a wait never
            # outlives the frame that arrived.
            opcode, frame = self._ws.recv_data_frame(control_frame=True)
        except websocket.WebSocketTimeoutException as exc:
            raise TimeoutError("no frame in time") from exc
        except TimeoutError:
            raise
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionError(type(exc).__name__) from exc
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise ConnectionError("closed by the venue")
        if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
            return frame if isinstance(frame, bytes | str) else frame.data
        return None

    def readable(self) -> bool:
        sock = self._ws.sock
        if sock is None:
            return True  # closed: reading says so
        pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted, select-blind
        if pending is not None and pending() > 0:
            return True
        try:
            ready, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(ready)

    def close(self) -> None:
        try:
            self._ws.close(timeout=0.2)
        except Exception:  # already broken: nothing to tell the peer
            self._ws.shutdown()


def connect_ws(url: str, connect_timeout: float) -> Socket:
    return _WsClientSocket(url, connect_timeout)


class WsRequestSession:
    """One venue WebSocket used for blocking requests, one at a time (not thread-safe: an
    actor's handler owns it)."""

    def __init__(
        self,
        url: str,
        protocol: WsEntryProtocol,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
        connector: Callable[[str, float], Socket] = connect_ws,
    ) -> None:
        self.url = url
        self.protocol = protocol
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._now_ms = now_ms
        self._monotonic = monotonic
        self._connector = connector
        self._sock: Socket | None = None
        self._last_io = 0.0
        self.stats: Counter[str] = Counter()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()

    def request(self, key: str, frame: bytes) -> Any:
        """Send ``frame`` and return the decoded answer whose key is ``key``.
        ``RequestNotSent``: nothing was sent. ``AnswerLost``: the outcome is unknown."""
        sock = self._ready()
        self.stats["requests"] += 1
        try:
            sock.send(frame)
        except ConnectionError as exc:
            self._lost(f"send failed: {exc}")
            raise AnswerLost(f"the socket failed while sending ({exc})") from None
        self._last_io = self._monotonic()
        return self._await(sock, key, self._monotonic() + self.timeout_s, "the answer")

    # ------------------------------------------------------------------ internals
    def _ready(self) -> Socket:
        sock = self._sock
        if sock is not None and self._monotonic() - self._last_io > self.protocol.max_idle_s:
            self.stats["idle_replaced"] += 1
            self.close()
            sock = None
        if sock is not None and not self._drain(sock):
            sock = None
        if sock is None:
            sock = self._open()
        return sock

    def _drain(self, sock: Socket) -> bool:
        """Read what is waiting (answering pings, dropping late answers); False when the
        venue has closed the socket meanwhile."""
        for _ in range(DRAIN_MAX_FRAMES):
            if not sock.readable():
                return True
            try:
                data = sock.recv(self.connect_timeout_s)
            except TimeoutError:
                return True  # a control frame only (a ping): nothing to read
            except ConnectionError:
                self.stats["closed_while_idle"] += 1
                self._lost("closed while idle")
                return False
            self._last_io = self._monotonic()
            if data is not None:
                self._ignore(data)
        return True

    def _open(self) -> Socket:
        try:
            sock = self._connector(self.url, self.connect_timeout_s)
        except ConnectionError as exc:
            self.stats["connect_failures"] += 1
            raise RequestNotSent(f"cannot connect to the order WebSocket: {exc}") from None
        self.stats["connects"] += 1
        self._sock = sock
        self._last_io = self._monotonic()
        deadline = self._monotonic() + self.connect_timeout_s
        try:
            for answer_key, frame in self.protocol.open_frames(self._now_ms()):
                try:
                    sock.send(frame)
                except ConnectionError as exc:
                    raise RequestNotSent(f"session opening failed: {exc}") from None
                try:
                    answer = self._await(sock, answer_key, deadline, "the session opening")
                except AnswerLost as exc:
                    raise RequestNotSent(str(exc)) from None
                error = self.protocol.open_error(answer)
                if error is not None:
                    raise RequestNotSent(f"the venue refused the session: {error}")
        except Exception as exc:
            # A half-opened session (not authenticated) must never carry a request.
            self.stats["open_failures"] += 1
            self.close()
            if isinstance(exc, RequestNotSent):
                raise
            raise RequestNotSent(f"session opening failed: {type(exc).__name__}: {exc}") from exc
        return sock

    def _await(self, sock: Socket, key: str, deadline: float, what: str) -> Any:
        while True:
            left = deadline - self._monotonic()
            if left <= 0:
                # A late answer would only be ignored; a fresh socket is cheaper to trust.
                self.stats["timeouts"] += 1
                self._lost("timeout")
                raise AnswerLost(f"no answer to {what} within {self.timeout_s:g} s")
            try:
                data = sock.recv(left)
            except TimeoutError:
                continue  # the deadline check above ends the wait
            except ConnectionError as exc:
                self._lost(str(exc))
                raise AnswerLost(f"the socket was lost while waiting for {what} ({exc})") from None
            self._last_io = self._monotonic()
            if data is None:
                continue  # a ping or pong
            message = self._decode(data)
            if message is not None and self.protocol.answer_key(message) == key:
                return message
            self.stats["ignored_frames"] += 1

    def _ignore(self, data: bytes | str) -> None:
        self.stats["ignored_frames"] += 1
        self._decode(data)

    def _decode(self, data: bytes | str) -> Any:
        try:
            return _decode(data)
        except msgspec.DecodeError:
            self.stats["malformed_frames"] += 1
            return None

    def _lost(self, why: str) -> None:
        self.stats["losses"] += 1
        logger.debug("order websocket {}: {}", self.url, why)
        self.close()
