"""Pure encoders: WebSocket frames, control-message parsing, symbol validation."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest

from exconn.sim import control
from exconn.sim.symbols import SimSymbol
from exconn.sim.wsframes import ChunkBuilder, iter_payloads, rewrap, text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_text_frame_header(size: int) -> None:
    payload = b"x" * size
    frame = text_frame(payload)
    assert frame[0] == 0x81, "FIN + text opcode"
    assert frame[1] & 0x80 == 0, "server frames are never masked"
    assert frame.endswith(payload)
    assert list(iter_payloads(frame)) == [payload]


def test_chunks_never_split_frames() -> None:
    payloads = [(b"p%d" % i) * (i % 300 + 1) for i in range(2_000)]
    builder = ChunkBuilder(chunk_bytes=4_096)
    for payload in payloads:
        builder.add(text_frame(payload))
    chunks = builder.finish()
    assert len(chunks) > 10 and builder.frames == len(payloads)
    assert [p for c in chunks for p in iter_payloads(c)] == payloads
    wrapped = [p for c in rewrap(chunks, lambda p: b"[" + p + b"]") for p in iter_payloads(c)]
    assert wrapped == [b"[" + p + b"]" for p in payloads]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", 3),
        ("[1, 2]", 2),
        ('{"method": "SUBSCRIBE", "params": "btcusdt@depth", "id": 1}', 2),
        ('{"method": "SUBSCRIBE", "params": [], "id": 1}', 2),
        ('{"method": "SUBSCRIBE", "params": [1], "id": 1}', 2),
        ('{"method": "FOO", "id": 1}', 2),
        ('{"params": ["a"], "id": 1}', 2),
        ('{"method": "LIST_SUBSCRIPTIONS", "id": true}', 2),
        ('{"method": "LIST_SUBSCRIPTIONS", "id": 1.5}', 2),
        ('{"method": "LIST_SUBSCRIPTIONS", "id": "' + "a" * 37 + '"}', 2),
    ],
)
def test_invalid_control_messages(text: str, code: int) -> None:
    result = control.parse(text)
    assert isinstance(result, dict) and result["code"] == code
    assert result["msg"].startswith("Invalid JSON" if code == 3 else "Invalid request")
    assert ("id" in result) == (code != 3)
    json.dumps(result)


@pytest.mark.parametrize("request_id", [1, 0, -5, 2**63 - 1, "abc123", "a-uuid-like_id", None])
def test_valid_control_ids(request_id: control.RequestId) -> None:
    result = control.parse(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}))
    assert result == control.Command("LIST_SUBSCRIPTIONS", [], request_id)


def test_symbol_validation() -> None:
    good = SimSymbol(
        symbol="XUSDT", base="X", quote="USDT", tick_size=Decimal("0.01"),
        step_size=Decimal("0.001"), min_qty=Decimal("0.001"), min_notional=Decimal("5"),
        mid=Decimal("10"),
    )
    assert good.mid_ticks == 1_000
    with pytest.raises(ValueError):
        replace(good, tick_size=Decimal("0.000000001"))
    with pytest.raises(ValueError):
        replace(good, symbol="xusdt")
    with pytest.raises(ValueError):
        replace(good, min_qty=Decimal("0.0015"))
