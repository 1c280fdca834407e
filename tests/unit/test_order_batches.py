"""Cutting order commands into venue batches (exconn.orders.batches), the venues' batch
limits, and per-order replies of a batch answer (the recorded Bybit payload)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from exconn.errors import InvalidOrder
from exconn.messages import OrderAccepted, OrderOutcomeUnknown, OrderRejected, PlaceOrder
from exconn.model.enums import Market, OrderSide, OrderType
from exconn.model.instruments import Instrument
from exconn.orders.batches import batches, flatten
from exconn.orders.command import ReplyContext
from exconn.venues.binance import order_entry as binance
from exconn.venues.bybit import order_entry as bybit

PAYLOADS = Path("/work/shared/reference/payloads")
LINEAR = Instrument(
    exchange="bybit", market=Market.LINEAR, symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT",
    base="BTC", quote="USDT", settle="USDT", tick_size=Decimal("0.1"),
    step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
)  # fmt: skip


def test_batches_group_by_market_in_order_and_cut_at_the_limit() -> None:
    items = [("linear", i) for i in range(45)] + [("spot", i) for i in range(11)]
    items.insert(3, ("spot", 99))
    limits = {"linear": 20, "spot": 10}
    out = batches(items, lambda item: item[0], limits.__getitem__)
    assert [(m, len(c)) for m, c in out] == [
        ("linear", 20), ("linear", 20), ("linear", 5), ("spot", 10), ("spot", 2),
    ]  # fmt: skip
    # Nothing lost, nothing doubled, the engine's order kept inside each market.
    assert sorted(flatten(out)) == sorted(items)
    assert [i for m, i in flatten(out) if m == "spot"] == [99, *range(11)]
    assert batches([], lambda item: "x", lambda m: 5) == []
    with pytest.raises(ValueError):
        batches([1], lambda item: "x", lambda m: 0)


def test_venue_batch_limits() -> None:
    # Spot: the 10-item limit; linear: 20 items, but its batch budget is 10 orders a second
    # (bybit.md §3), so a larger batch would fail past the 10th order.
    assert bybit.batch_limit("spot", "place") == 10 and bybit.batch_limit("spot", "cancel") == 10
    assert bybit.batch_limit("linear", "place") == 10
    assert bybit.batch_limit("linear", "cancel") == 10
    assert bybit.batch_limit("spot", "amend") is None
    # Binance: spot has no batch place; USD-M batchOrders is not used (see batch_limit's doc).
    for market in ("spot", "linear"):
        assert binance.batch_limit(market, "place") is None
        assert binance.batch_limit(market, "cancel") is None


def _orders(n: int) -> list[PlaceOrder]:
    return [
        PlaceOrder(
            "bybit",
            Market.LINEAR,
            "BTC/USDT:USDT",
            OrderSide.BUY,
            OrderType.LIMIT,
            Decimal("0.01"),
            Decimal("50000"),
            client_order_id=f"batch-{i:03d}",
        )
        for i in range(n)
    ]


def test_a_bybit_batch_request_holds_at_most_the_category_limit() -> None:
    request = bybit.place_batch_request(_orders(20), [LINEAR] * 20)
    assert request.path == "/v5/order/create-batch"
    assert request.params["category"] == "linear" and len(request.params["request"]) == 20
    with pytest.raises(InvalidOrder):
        bybit.place_batch_request(_orders(21), [LINEAR] * 21)


def _ctxs(n: int) -> list[ReplyContext]:
    return [
        ReplyContext(
            exchange="bybit",
            market="linear",
            symbol="BTC/USDT:USDT",
            action="place",
            client_order_id=f"batch-{i:03d}",
        )
        for i in range(n)
    ]


def test_the_recorded_batch_answer_refuses_each_order_with_its_own_code() -> None:
    body = json.loads((PAYLOADS / "bybit_wstrade_batch_create_response.json").read_text())
    replies = bybit.parse_batch_reply(body, _ctxs(3))
    assert all(isinstance(r, OrderRejected) and r.code == 10001 for r in replies), replies
    assert [r.client_order_id for r in replies] == ["batch-000", "batch-001", "batch-002"]


def test_a_mixed_batch_answer_maps_to_one_reply_per_order() -> None:
    body = {
        "retCode": 0,
        "retMsg": "OK",
        "result": {
            "list": [
                {"category": "linear", "symbol": "BTCUSDT", "orderId": "o-1",
                 "orderLinkId": "batch-000", "createAt": "1"},
                {"category": "linear", "symbol": "BTCUSDT", "orderId": "",
                 "orderLinkId": "batch-001", "createAt": ""},
                {"category": "linear", "symbol": "BTCUSDT", "orderId": "",
                 "orderLinkId": "batch-002", "createAt": ""},
            ]
        },
        "retExtInfo": {
            "list": [
                {"code": 0, "msg": "OK"},
                {"code": 170141, "msg": "Duplicate clientOrderId"},
                {"code": 10016, "msg": "Server error."},
            ]
        },
    }  # fmt: skip
    accepted, refused, unknown = bybit.parse_batch_reply(body, _ctxs(3))
    assert isinstance(accepted, OrderAccepted) and accepted.exchange_order_id == "o-1"
    assert isinstance(refused, OrderRejected) and refused.reason == "InvalidOrder"
    assert refused.client_order_id == "batch-001"
    # An item the venue answered "internal error" may exist: unknown, resolved by query.
    assert isinstance(unknown, OrderOutcomeUnknown) and unknown.client_order_id == "batch-002"
    # A list that does not line up with the request leaves every order unknown.
    body["retExtInfo"]["list"].pop()  # type: ignore[index]
    assert all(isinstance(r, OrderOutcomeUnknown) for r in bybit.parse_batch_reply(body, _ctxs(3)))
