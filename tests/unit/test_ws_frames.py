"""WsConnection's server-frame reader over a socketpair: real bytes, no server needed."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest
import websocket

from exconn.transport.ws import WsClosed, WsConnection


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


@pytest.fixture
def pair() -> Iterator[tuple[WsConnection, socket.socket]]:
    client, server = socket.socketpair()
    client.setblocking(False)
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.sock = client
    ws.connected = True
    conn = WsConnection("ws://test")
    conn._ws = ws
    try:
        yield conn, server
    finally:
        client.close()
        server.close()


def test_frames_split_across_reads_are_reassembled(pair) -> None:
    conn, server = pair
    data = frame(b'{"a":1}') + frame(b"x" * 300) + frame(b"y" * 70_000)
    server.sendall(data[:5])
    assert conn.read_available(100) == ([], False)
    server.sendall(data[5:200])
    assert conn.read_available(100) == ([b'{"a":1}'], False)
    server.sendall(data[200:])
    frames, more = conn.read_available(100)
    while len(frames) < 2:  # the 64-bit-length frame may need several reads
        got, more = conn.read_available(100)
        frames += got
    assert frames == [b"x" * 300, b"y" * 70_000] and not more


def test_max_frames_stops_the_read_and_says_more(pair) -> None:
    conn, server = pair
    server.sendall(b"".join(frame(str(i).encode()) for i in range(10)))
    first, more = conn.read_available(4)
    assert first == [b"0", b"1", b"2", b"3"] and more
    rest, more = conn.read_available(100)
    assert rest == [str(i).encode() for i in range(4, 10)] and not more


def test_ping_is_answered_with_the_same_payload(pair) -> None:
    conn, server = pair
    server.sendall(frame(b"hello", opcode=0x9) + frame(b"data"))
    assert conn.read_available(10) == ([b"data"], False)
    reply = server.recv(100)
    assert reply[0] == 0x8A  # FIN + pong
    length = reply[1] & 0x7F
    mask = reply[2:6]
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(reply[6 : 6 + length]))
    assert payload == b"hello"


def test_fragmented_message_with_interleaved_ping(pair) -> None:
    conn, server = pair
    server.sendall(
        frame(b'{"part":', fin=False)
        + frame(b"", opcode=0x9)
        + frame(b'"one"', opcode=0x0, fin=False)
        + frame(b"}", opcode=0x0, fin=True)
    )
    assert conn.read_available(10) == ([b'{"part":"one"}'], False)


def test_messages_before_a_close_frame_are_delivered_then_it_raises(pair) -> None:
    conn, server = pair
    server.sendall(frame(b"ok") + frame(struct.pack(">H", 1008), opcode=0x8))
    assert conn.read_available(10) == ([b"ok"], True)
    with pytest.raises(WsClosed, match="1008"):
        conn.read_available(10)
    assert not conn.connected


def test_eof_raises(pair) -> None:
    conn, server = pair
    server.shutdown(socket.SHUT_WR)
    with pytest.raises(WsClosed, match="EOF"):
        conn.read_available(10)


def test_masked_server_frame_is_a_protocol_error(pair) -> None:
    conn, server = pair
    server.sendall(bytes([0x81, 0x80 | 2]) + b"\x00\x00\x00\x00ab")
    with pytest.raises(WsClosed, match="masked"):
        conn.read_available(10)
