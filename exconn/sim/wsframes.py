"""Pre-encoded server WebSocket frames (RFC 6455): FIN + text opcode, never masked.

The flood writes these bytes straight to the TCP transport, so a benchmark measures the
client, not the server's per-message framing.
"""

import struct
from collections.abc import Callable, Iterable, Iterator

_FIN_TEXT = 0x81
CHUNK_BYTES = 1 << 20  # big writes keep the server far ahead of any Python client


def text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", _FIN_TEXT, 126, n) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, n) + payload


class ChunkBuilder:
    """Concatenates frames into chunks of about CHUNK_BYTES, never splitting a frame."""

    def __init__(self, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._limit = chunk_bytes
        self._parts: list[bytes] = []
        self._size = 0
        self.chunks: list[bytes] = []
        self.frames = 0

    def add(self, frame: bytes) -> None:
        self._parts.append(frame)
        self._size += len(frame)
        self.frames += 1
        if self._size >= self._limit:
            self._flush()

    def _flush(self) -> None:
        if self._parts:
            self.chunks.append(b"".join(self._parts))
            self._parts, self._size = [], 0

    def finish(self) -> list[bytes]:
        self._flush()
        return self.chunks


def iter_payloads(chunk: bytes) -> Iterator[bytes]:
    """Split a chunk built by ChunkBuilder back into frame payloads."""
    pos, end = 0, len(chunk)
    while pos < end:  # each pass consumes one whole frame, so the loop is bounded by len
        length = chunk[pos + 1] & 0x7F
        if length == 126:
            (length,) = struct.unpack_from("!H", chunk, pos + 2)
            pos += 4
        elif length == 127:
            (length,) = struct.unpack_from("!Q", chunk, pos + 2)
            pos += 10
        else:
            pos += 2
        yield chunk[pos : pos + length]
        pos += length


def rewrap(chunks: Iterable[bytes], wrap: Callable[[bytes], bytes]) -> Iterator[bytes]:
    """Re-frame every payload of pre-encoded chunks through `wrap`, chunk by chunk."""
    for chunk in chunks:
        builder = ChunkBuilder()
        for payload in iter_payloads(chunk):
            builder.add(text_frame(wrap(payload)))
        yield from builder.finish()
