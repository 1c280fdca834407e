"""One WebSocket connection (websocket-client) readable without threads or blocking.

The connection actor hands ``fileno()`` to Thespian (``ThespianWatch``) and calls
``read_available()`` when the socket is readable: it returns the complete messages already
received and keeps the bytes of a partial frame for the next read, so a frame split across
reads is never lost. websocket-client does the handshake, sends, and closes; server pings are
answered with a pong carrying the same payload.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import websocket

OPCODE_CONT = websocket.ABNF.OPCODE_CONT
OPCODE_TEXT = websocket.ABNF.OPCODE_TEXT
OPCODE_BINARY = websocket.ABNF.OPCODE_BINARY
OPCODE_CLOSE = websocket.ABNF.OPCODE_CLOSE
OPCODE_PING = websocket.ABNF.OPCODE_PING
OPCODE_PONG = websocket.ABNF.OPCODE_PONG
READ_CHUNK = 65_536  # below glibc's mmap threshold: a read never costs an mmap/munmap pair


class WsClosed(Exception):
    """The connection is gone (closed by the peer, reset, or a protocol error)."""


class WsConnection:
    def __init__(self, url: str, *, connect_timeout: float = 10.0, send_timeout: float = 5.0):
        self.url = url
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self._ws: websocket.WebSocket | None = None
        self._rest = b""  # bytes of an incomplete frame
        self._fragments: list[bytes] | None = None  # a fragmented message being assembled
        self._closed_reason: str | None = None  # peer closed after messages not yet returned
        # Pongs sent for server pings: the venue counts them against its per-connection
        # message limit, so the caller's pacer must count them too.
        self.pongs_sent = 0
        # Ping and pong frames received (they never reach the caller as messages): proof that
        # the peer still answers, for a heartbeat watchdog.
        self.control_frames_received = 0

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._ws.connected

    def connect(self) -> None:
        """Blocking handshake bounded by ``connect_timeout``; then the socket is non-blocking."""
        ws = websocket.WebSocket(
            skip_utf8_validation=True,  # ~6x faster frames; payloads are decoded by msgspec
            enable_multithread=False,
        )
        ws.settimeout(self.connect_timeout)
        try:
            ws.connect(self.url)
        except (OSError, websocket.WebSocketException) as exc:
            ws.shutdown()
            raise WsClosed(f"connect to {self.url} failed: {exc}") from exc
        ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ws.settimeout(0)
        self._ws = ws
        self._rest = b""
        self._fragments = None
        self._closed_reason = None

    def fileno(self) -> int:
        if self._ws is None or self._ws.sock is None:
            raise WsClosed("not connected")
        return self._ws.sock.fileno()

    def read_available(self, max_frames: int) -> tuple[list[bytes], bool]:
        """Complete data messages now readable, oldest first, at most ``max_frames``; the flag
        says whether the limit stopped the read (more may be waiting, possibly inside the TLS
        layer where select() cannot see it, so the caller must come back without waiting for
        the socket to become readable).

        Raises ``WsClosed`` when the peer closed or the connection broke. Messages that arrived
        before the close are returned first (with the flag set) and the next call raises.
        """
        ws = self._ws
        if ws is None:
            raise WsClosed("not connected")
        if self._closed_reason is not None:
            reason, self._closed_reason = self._closed_reason, None
            self._drop()
            raise WsClosed(reason)
        frames: list[bytes] = []
        try:
            more = self._read_frames(ws, frames, max_frames)
        except WsClosed as exc:
            if frames:
                self._closed_reason = str(exc)
                return frames, True
            self._drop()
            raise
        except (OSError, websocket.WebSocketException) as exc:
            self._drop()
            raise WsClosed(str(exc) or type(exc).__name__) from exc
        return frames, more

    def _read_frames(self, ws: websocket.WebSocket, out: list[bytes], max_frames: int) -> bool:
        # Server frames are parsed here, not by websocket-client's recv_data_frame: its
        # per-frame call chain (five Python calls and two socket reads a frame) cost more than
        # decoding the frame, and on CPython 3.11 those nested calls can thrash the frame-stack
        # allocator (an mmap/munmap pair per call) depending on the stack depth the actor
        # process happens to run at. One socket read here serves hundreds of frames.
        sock = ws.sock
        buf = self._rest
        pos = 0
        append = out.append
        while len(out) < max_frames:
            n = len(buf) - pos
            if n >= 2:
                b0 = buf[pos]
                b1 = buf[pos + 1]
                length = b1 & 0x7F
                head = 2
                if length == 126:
                    head = 4
                    if n >= 4:
                        length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                elif length == 127:
                    head = 10
                    if n >= 10:
                        length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                if b1 & 0x80:
                    raise WsClosed("protocol error: masked frame from server")
                end = pos + head + length
                if n >= head and end <= len(buf):
                    payload = buf[pos + head : end]
                    pos = end
                    opcode = b0 & 0x0F
                    if opcode in (OPCODE_TEXT, OPCODE_BINARY) and b0 & 0x80:
                        append(payload)
                    else:
                        self._on_other_frame(ws, b0, opcode, payload, append)
                    continue
            # Incomplete frame: read more.
            try:
                chunk = sock.recv(READ_CHUNK)
            except (BlockingIOError, ssl.SSLWantReadError):
                self._rest = buf[pos:]
                return False
            if not chunk:
                raise WsClosed("connection closed by peer (EOF)")
            buf = buf[pos:] + chunk
            pos = 0
        self._rest = buf[pos:]
        return True

    def _on_other_frame(
        self, ws: websocket.WebSocket, b0: int, opcode: int, payload: bytes, append: Any
    ) -> None:
        fin = b0 & 0x80
        if opcode == OPCODE_PING:
            self.control_frames_received += 1
            self._send_control(ws.pong, payload)
            self.pongs_sent += 1
        elif opcode == OPCODE_PONG:
            self.control_frames_received += 1
        elif opcode == OPCODE_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            raise WsClosed(f"closed by peer (code {code})")
        elif opcode in (OPCODE_TEXT, OPCODE_BINARY):  # first fragment of a message
            self._fragments = [payload]
        elif opcode == OPCODE_CONT:
            if self._fragments is None:
                raise WsClosed("protocol error: continuation without a first fragment")
            self._fragments.append(payload)
            if fin:
                append(b"".join(self._fragments))
                self._fragments = None
        else:
            raise WsClosed(f"protocol error: opcode {opcode}")

    def _send_control(self, send: Any, payload: bytes) -> None:
        ws = self._ws
        assert ws is not None
        ws.settimeout(self.send_timeout)
        try:
            send(payload)
        finally:
            ws.settimeout(0)

    def send_text(self, text: str) -> None:
        ws = self._ws
        if ws is None:
            raise WsClosed("not connected")
        # A partial non-blocking write would corrupt the frame stream: send blocking, bounded.
        ws.settimeout(self.send_timeout)
        try:
            ws.send(text)
        except (OSError, websocket.WebSocketException) as exc:
            self._drop()
            raise WsClosed(f"send failed: {exc}") from exc
        finally:
            if self._ws is not None:
                self._ws.settimeout(0)

    def send_ping(self, payload: bytes = b"") -> None:
        """A ping control frame: the peer must answer with a pong (RFC 6455 §5.5.2)."""
        ws = self._ws
        if ws is None:
            raise WsClosed("not connected")
        try:
            self._send_control(ws.ping, payload)
        except (OSError, websocket.WebSocketException) as exc:
            self._drop()
            raise WsClosed(f"send failed: {exc}") from exc

    def close(self) -> None:
        ws = self._ws
        self._ws = None
        if ws is not None:
            try:
                ws.settimeout(1.0)
                ws.close(timeout=1.0)
            except (OSError, websocket.WebSocketException):
                ws.shutdown()

    def _drop(self) -> None:
        ws = self._ws
        self._ws = None
        if ws is not None:
            ws.shutdown()
