"""One conformance suite for every venue's private stream: the same handler surface, and the same
events for the same facts (an order placed, partly filled, cancelled; a position; a balance;
refused credentials; garbage). Each venue only says how it writes those facts on its wire."""

from __future__ import annotations

import inspect
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import msgspec
import pytest

from exconn.delivery import Delivery
from exconn.errors import AuthError
from exconn.messages import (
    BalanceUpdate,
    EventBatch,
    Fill,
    OrderUpdate,
    PositionSide,
    PositionUpdate,
    UserEvent,
)
from exconn.model.enums import Exchange, Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.venues.binance import user_stream as binance
from exconn.venues.bybit import user_stream as bybit
from exconn.venues.keys import Credentials
from tests.unit.stream_support import instrument

T = 1_700_000_000_123  # every fact happens at this exchange time
TS = datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
CREDS = Credentials("conformance-key", secret="conformance-secret")
Handler = Any


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Order:
    """One order fact, venue-neutral: what every venue must report the same way."""

    status: str  # "new", "partial", "canceled"
    filled: str = "0"
    last_qty: str = "0"  # > 0: this update is a fill of last_qty at 60000
    qty: str = "0.010"
    price: str = "60000"
    fee: str = "0.03"


# --------------------------------------------------------------------------------------------
# How each venue writes the facts


class BinanceWire:
    name = "binance"
    # fact -> (execution type x, order status X)
    STATUS: ClassVar[dict[str, tuple[str, str]]] = {
        "new": ("NEW", "NEW"),
        "partial": ("TRADE", "PARTIALLY_FILLED"),
        "canceled": ("CANCELED", "CANCELED"),
    }

    def __init__(self, market: Market) -> None:
        self.market = market

    def handler(self) -> Handler:
        btc = instrument(Exchange.BINANCE, self.market, "BTC", "USDT", tick="0.1", step="0.001")
        return binance.UserStreamHandler(self.market, [btc])

    def order(self, fact: Order) -> list[bytes]:
        x, status = self.STATUS[fact.status]
        traded = Decimal(fact.last_qty) > 0
        avg = "60000" if Decimal(fact.filled) else "0"
        common = {
            "s": "BTCUSDT",
            "c": "cid-1",
            "S": "BUY",
            "o": "LIMIT",
            "f": "GTC",
            "q": fact.qty,
            "p": fact.price,
            "x": x,
            "X": status,
            "i": 42,
            "l": fact.last_qty,
            "z": fact.filled,
            "L": "60000" if traded else "0",
            "n": fact.fee if traded else "0",
            "N": "USDT" if traded else None,
            "T": T,
            "t": 777 if traded else -1,
            "m": True,
        }
        if self.market is Market.SPOT:
            quote = str(Decimal(fact.filled) * 60000)
            event = {"e": "executionReport", "E": T, **common, "C": "", "Z": quote}
            return [dumps({"subscriptionId": 0, "event": event})]
        detail = {**common, "ap": avg, "sp": "0", "R": False, "ps": "BOTH"}
        return [dumps({"e": "ORDER_TRADE_UPDATE", "E": T, "T": T, "o": detail})]

    def position(self) -> list[bytes]:
        p = {"s": "BTCUSDT", "pa": "0.004", "ep": "60000", "up": "1.5", "cr": "0"}
        p |= {"mt": "cross", "ps": "BOTH"}
        update = {"e": "ACCOUNT_UPDATE", "E": T, "T": T, "a": {"m": "ORDER", "P": [p]}}
        return [dumps(update)]

    def balance(self) -> list[bytes]:
        b = {"a": "USDT", "wb": "1000", "cw": "1000", "bc": "0"}
        return [dumps({"e": "ACCOUNT_UPDATE", "E": T, "T": T, "a": {"m": "ORDER", "B": [b]}})]

    def auth_failure(self, handler: Handler) -> list[bytes]:
        frames = handler.open_frames(CREDS, T)
        if self.market is Market.LINEAR:
            return []  # the listenKey REST call is where a USD-M key is refused
        request_id = json.loads(frames[0])["id"]
        error = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
        return [dumps({"id": request_id, "status": 401, "error": error})]

    def auth_success(self, handler: Handler) -> list[bytes]:
        if self.market is Market.LINEAR:
            handler.on_listen_key(dumps({"listenKey": "lk"}))
            handler.open_frames(CREDS, T)
            return []
        (request,) = handler.open_frames(CREDS, T)
        reply = {"id": json.loads(request)["id"], "status": 200, "result": {"subscriptionId": 0}}
        return [dumps(reply)]


class BybitWire:
    name = "bybit"
    STATUS: ClassVar[dict[str, str]] = {
        "new": "New",
        "partial": "PartiallyFilled",
        "canceled": "Cancelled",
    }

    def __init__(self, market: Market) -> None:
        self.market = market
        self.category = "spot" if market is Market.SPOT else "linear"

    def handler(self) -> Handler:
        return bybit.UserStreamHandler(
            [instrument(Exchange.BYBIT, self.market, "BTC", "USDT", tick="0.1", step="0.001")]
        )

    def _msg(self, topic: str, item: dict[str, Any]) -> bytes:
        return dumps({"id": "x", "topic": topic, "creationTime": T, "data": [item]})

    def order(self, fact: Order) -> list[bytes]:
        item = {
            "category": self.category,
            "symbol": "BTCUSDT",
            "orderId": "42",
            "orderLinkId": "cid-1",
            "side": "Buy",
            "orderType": "Limit",
            "price": fact.price,
            "qty": fact.qty,
            "timeInForce": "GTC",
            "orderStatus": self.STATUS[fact.status],
            "cumExecQty": fact.filled,
            "avgPrice": "60000" if Decimal(fact.filled) else "",
            "positionIdx": 0,
            "createdTime": str(T),
            "updatedTime": str(T),
        }
        frames = [self._msg("order", item)]
        if Decimal(fact.last_qty) > 0:
            execution = {
                "category": self.category,
                "symbol": "BTCUSDT",
                "orderId": "42",
                "orderLinkId": "cid-1",
                "side": "Buy",
                "execId": "777",
                "execPrice": "60000",
                "execQty": fact.last_qty,
                "execType": "Trade",
                "execFee": fact.fee,
                "feeCurrency": "USDT",
                "isMaker": True,
                "execTime": str(T),
            }
            frames.append(self._msg("execution", execution))
        return frames

    def position(self) -> list[bytes]:
        item = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "size": "0.004"}
        item |= {"positionIdx": 0, "entryPrice": "60000", "unrealisedPnl": "1.5"}
        item |= {"cumRealisedPnl": "0", "leverage": "10", "updatedTime": str(T)}
        return [self._msg("position", item)]

    def balance(self) -> list[bytes]:
        account = {"accountType": "UNIFIED", "coin": [{"coin": "USDT", "walletBalance": "1000"}]}
        return [dumps({"id": "w", "topic": "wallet", "creationTime": T, "data": [account]})]

    def auth_failure(self, handler: Handler) -> list[bytes]:
        handler.open_frames(CREDS, T)
        reply = {"op": "auth", "success": False, "retCode": 10003, "retMsg": "Invalid apikey"}
        return [dumps(reply)]

    def auth_success(self, handler: Handler) -> list[bytes]:
        handler.open_frames(CREDS, T)
        return [
            dumps({"success": True, "ret_msg": "", "op": "auth", "conn_id": "c"}),
            dumps({"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "c"}),
        ]


Wire = BinanceWire | BybitWire
WIRES: dict[str, Callable[[], Wire]] = {
    "binance-spot": lambda: BinanceWire(Market.SPOT),
    "binance-linear": lambda: BinanceWire(Market.LINEAR),
    "bybit-spot": lambda: BybitWire(Market.SPOT),
    "bybit-linear": lambda: BybitWire(Market.LINEAR),
}
LINEAR = ["binance-linear", "bybit-linear"]


@pytest.fixture(params=sorted(WIRES))
def wire(request: pytest.FixtureRequest) -> Wire:
    return WIRES[request.param]()


@pytest.fixture(params=LINEAR)
def linear_wire(request: pytest.FixtureRequest) -> Wire:
    return WIRES[request.param]()


def feed(handler: Handler, frames: list[bytes]) -> list[UserEvent]:
    return [event for raw in frames for event in handler.on_frame(raw)]


def neutral(event: UserEvent) -> UserEvent:
    """The event without what only names the venue."""
    if isinstance(event, OrderUpdate):
        return msgspec.structs.replace(event, exchange="", venue_status="", venue_type="")
    return msgspec.structs.replace(event, exchange="")


# --------------------------------------------------------------------------------------------
# The surface


SURFACE = {
    "on_frame": ["raw"],
    "open_frames": ["credentials", "now_ms"],
    "ping_frame": [],
    "close_frames": [],
    "on_disconnect": [],
}
STATE = ("authenticated", "subscribed", "auth_error", "error", "malformed", "ignored", "unmapped")


@pytest.mark.parametrize(
    "cls", [binance.UserStreamHandler, bybit.UserStreamHandler], ids=["binance", "bybit"]
)
def test_same_class_name_and_methods(cls: type) -> None:
    assert cls.__name__ == "UserStreamHandler"
    for method, params in SURFACE.items():
        signature = inspect.signature(getattr(cls, method))
        assert list(signature.parameters)[1:] == params, method


def test_same_module_surface() -> None:
    for name in ("UserStreamHandler", "PING_INTERVAL_S", "LOG_EVERY"):
        assert hasattr(binance, name) and hasattr(bybit, name), name


def test_initial_state(wire: Wire) -> None:
    handler = wire.handler()
    assert handler.exchange == wire.name
    for name in STATE:
        assert hasattr(handler, name), name
    assert (handler.authenticated, handler.subscribed) == (False, False)
    assert (handler.auth_error, handler.error) == (None, None)
    assert (handler.malformed, handler.ignored, handler.unmapped) == (0, 0, 0)
    assert "secret" not in repr(handler)


def test_handshake_success_then_disconnect(wire: Wire) -> None:
    handler = wire.handler()
    assert feed(handler, wire.auth_success(handler)) == []
    assert handler.authenticated and handler.subscribed and handler.auth_error is None
    handler.on_disconnect()
    assert not handler.subscribed


def test_refused_credentials_are_a_typed_auth_error(wire: Wire) -> None:
    handler = wire.handler()
    frames = wire.auth_failure(handler)
    if not frames:
        pytest.skip("USD-M keys are refused on the listenKey REST call, not on the stream")
    assert feed(handler, frames) == []
    err = handler.auth_error
    assert isinstance(err, AuthError) and isinstance(err.code, int) and err.venue_message
    assert err.exchange == wire.name
    assert not handler.authenticated and not handler.subscribed
    assert "conformance-secret" not in str(err) + repr(err)


# --------------------------------------------------------------------------------------------
# The same facts, the same events


def expected_order(market: Market, status: OrderStatus, filled: str) -> OrderUpdate:
    return OrderUpdate(
        exchange="",
        market=market.value,
        symbol="BTC/USDT" if market is Market.SPOT else "BTC/USDT:USDT",
        client_order_id="cid-1",
        exchange_order_id="42",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        status=status,
        price=Decimal(60000),
        qty=Decimal("0.010"),
        filled_qty=Decimal(filled),
        avg_price=Decimal(60000) if Decimal(filled) else None,
        ts=TS,
        position_side=PositionSide.BOTH if market is Market.LINEAR else None,
    )


def test_order_lifecycle_new_partial_fill_cancel(wire: Wire) -> None:
    handler = wire.handler()
    market = wire.market
    new = feed(handler, wire.order(Order("new")))
    partial = feed(handler, wire.order(Order("partial", filled="0.004", last_qty="0.004")))
    canceled = feed(handler, wire.order(Order("canceled", filled="0.004")))
    assert [neutral(e) for e in new] == [expected_order(market, OrderStatus.NEW, "0")]
    assert [type(e) for e in partial] == [OrderUpdate, Fill]
    assert [neutral(e) for e in partial] == [
        expected_order(market, OrderStatus.PARTIALLY_FILLED, "0.004"),
        Fill(
            exchange="",
            market=market.value,
            symbol="BTC/USDT" if market is Market.SPOT else "BTC/USDT:USDT",
            trade_id="777",
            exchange_order_id="42",
            client_order_id="cid-1",
            side=OrderSide.BUY,
            price=Decimal(60000),
            qty=Decimal("0.004"),
            fee=Decimal("0.03"),
            fee_asset="USDT",
            is_maker=True,
            ts=TS,
        ),
    ]
    assert [neutral(e) for e in canceled] == [expected_order(market, OrderStatus.CANCELED, "0.004")]
    assert all(e.exchange == wire.name for e in new + partial + canceled)
    assert (handler.malformed, handler.ignored, handler.unmapped) == (0, 0, 0)


def test_position(linear_wire: Wire) -> None:
    (position,) = feed(linear_wire.handler(), linear_wire.position())
    assert isinstance(position, PositionUpdate)
    core = (
        position.market,
        position.symbol,
        position.position_side,
        position.qty,
        position.entry_price,
        position.unrealized_pnl,
        position.realized_pnl,
        position.ts,
    )
    assert core == (
        "linear",
        "BTC/USDT:USDT",
        PositionSide.BOTH,
        Decimal("0.004"),
        Decimal(60000),
        Decimal("1.5"),
        Decimal(0),
        TS,
    )


def test_balance(linear_wire: Wire) -> None:
    (balance,) = feed(linear_wire.handler(), linear_wire.balance())
    assert isinstance(balance, BalanceUpdate)
    assert (balance.asset, balance.total, balance.ts) == ("USDT", Decimal(1000), TS)


def test_unknown_symbol_is_unmapped_not_guessed(wire: Wire) -> None:
    handler = wire.handler()
    frames = [raw.replace(b"BTCUSDT", b"DOGEUSDT") for raw in wire.order(Order("new"))]
    assert feed(handler, frames) == []
    assert handler.unmapped == 1 and handler.malformed == 0


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"{", b"null", b'{"x":1}', b"[]"])
def test_garbage_is_counted_never_raised(wire: Wire, raw: bytes) -> None:
    handler = wire.handler()
    assert handler.on_frame(raw) == []
    assert handler.malformed == 1


# --------------------------------------------------------------------------------------------
# Delivery: the events travel in an EventBatch and are never conflated


def test_events_travel_in_an_event_batch_and_are_never_conflated(wire: Wire) -> None:
    handler = wire.handler()
    events = feed(handler, wire.order(Order("new")))
    events += feed(handler, wire.order(Order("partial", filled="0.004", last_qty="0.004")))
    events += feed(handler, wire.order(Order("canceled", filled="0.004")))
    if wire.market is Market.LINEAR:
        events += feed(handler, wire.position()) + feed(handler, wire.balance())
    assert EventBatch.of(events).events == tuple(events)
    assert pickle.loads(pickle.dumps(EventBatch.of(events))).events == tuple(events)
    assert pickle.loads(pickle.dumps(events)) == events  # frozen Structs pickle as they are

    delivery = Delivery(max_in_flight=1, unmerged_drains=0)
    assert delivery.offer("slow", [events[0]])  # in flight: the next drains wait
    for _ in range(3):  # the same updates again and again, as a slow subscriber sees them
        assert not delivery.offer("slow", list(events))
    waiting = delivery.completed("slow")
    assert waiting is not None
    assert waiting[0] == list(events) * 3
    assert delivery.conflated == 0
