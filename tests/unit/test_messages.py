from __future__ import annotations

import pickle
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from exconn.messages import (
    BookDelta,
    BookDeltaText,
    BookSnapshot,
    EventBatch,
    PlaceOrder,
    Trade,
    TradeText,
)
from exconn.model.enums import Market, OrderSide, OrderType


def test_float_price_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="float"):
        PlaceOrder(
            exchange="binance",
            market=Market.SPOT,
            symbol="BTC/USDT",
            side=OrderSide.BUY,
            type=OrderType.LIMIT,
            qty=Decimal("0.01"),
            price=60000.0,
        )  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        PlaceOrder(
            exchange="binance",
            market=Market.SPOT,
            symbol="BTC/USDT",
            side=OrderSide.BUY,
            type=OrderType.MARKET,
            qty=0.01,
        )  # type: ignore[arg-type]


def test_event_batch_round_trips_typed_events_through_pickle() -> None:
    delta = BookDeltaText(
        exchange="binance",
        market="spot",
        symbol="BTC/USDT",
        prev_update_id=1,
        update_id=2,
        bids=[("61837.63000000", "0.00000000")],
        asks=[],
        ts=1723161255.208,
    )
    trade = TradeText(
        exchange="binance",
        market="spot",
        symbol="BTC/USDT",
        trade_id="7",
        price="61837.63",
        qty="0.02",
        side=OrderSide.SELL,
        ts=1723161255.342,
    )
    snapshot = BookSnapshot(
        exchange="binance",
        market="spot",
        symbol="BTC/USDT",
        update_id=1,
        bids=((Decimal("1.5"), Decimal("2")),),
        asks=(),
    )
    batch = pickle.loads(pickle.dumps(EventBatch.of([snapshot, delta, trade])))
    got_snapshot, got_delta, got_trade = batch.events
    assert got_snapshot == snapshot
    assert isinstance(got_delta, BookDelta)
    assert got_delta.bids == ((Decimal("61837.63000000"), Decimal("0")),)
    assert got_delta.ts == datetime(2024, 8, 8, 23, 54, 15, 208000, tzinfo=UTC)
    assert isinstance(got_trade, Trade) and got_trade.price == Decimal("61837.63")
    assert got_trade.ts.microsecond == 342000 and got_trade.side is OrderSide.SELL


def test_batches_carry_when_their_frames_were_read() -> None:
    import time

    from exconn.outbox import Outbox

    before = time.monotonic_ns()
    out = Outbox()
    after = time.monotonic_ns()
    trade = TradeText(
        exchange="binance",
        market="spot",
        symbol="BTC/USDT",
        trade_id="1",
        price="1",
        qty="1",
        side=OrderSide.BUY,
        ts=1.0,
    )
    out.add((("s", "s"),), trade)
    ((_, batch),) = out.drain()
    assert before <= batch.received_ns <= after
    assert pickle.loads(pickle.dumps(batch)).received_ns == batch.received_ns
