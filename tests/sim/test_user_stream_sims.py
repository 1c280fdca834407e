"""The private-stream handlers (exconn.venues.*.user_stream) against the simulators on
127.0.0.1: a plain websocket-client socket, no actors. The handler builds the handshake, an
order is placed with the tests' own signed REST clients, and the stream's frames must parse
into the order's events (status, fill, position, balance)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websocket

from exconn.messages import BalanceUpdate, Fill, OrderUpdate, PositionUpdate, UserEvent
from exconn.model.enums import Exchange, Market, OrderStatus
from exconn.model.instruments import Instrument
from exconn.model.symbols import make_symbol
from exconn.sim import BinanceSpotSim, BinanceUsdmSim, BybitSim
from exconn.sim.symbols import DEFAULT_SYMBOLS, SimSymbol
from exconn.venues.binance import user_stream as binance
from exconn.venues.bybit import user_stream as bybit
from exconn.venues.keys import Credentials
from tests.sim.spot_client import Rest as SpotRest
from tests.sim.test_bybit_client import Rest as BybitRest
from tests.sim.test_usdm_helpers import Rest as UsdmRest

TIMEOUT = 10.0
Handler = Any


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def instruments(exchange: Exchange, market: Market, symbols: list[SimSymbol]) -> list[Instrument]:
    settle = (lambda s: s.quote) if market is Market.LINEAR else (lambda s: None)
    return [
        Instrument(
            exchange=exchange,
            market=market,
            symbol=make_symbol(s.base, s.quote, settle(s)),
            venue_symbol=s.symbol,
            base=s.base,
            quote=s.quote,
            settle=settle(s),
            tick_size=s.tick_size,
            step_size=s.step_size,
            min_qty=s.min_qty,
        )
        for s in symbols
    ]


def pump(
    ws: websocket.WebSocket,
    handler: Handler,
    done: Callable[[list[UserEvent]], bool],
    limit: int = 500,
) -> list[UserEvent]:
    """Frames through the handler until ``done(events)``; a bounded count, each recv bounded
    by the socket timeout."""
    events: list[UserEvent] = []
    for _ in range(limit):
        if done(events):
            return events
        raw = ws.recv()
        events.extend(handler.on_frame(raw.encode() if isinstance(raw, str) else raw))
    raise AssertionError(f"stream never got there; events so far: {events}")


def of(kind: type, events: list[UserEvent]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def filled(events: list[UserEvent]) -> bool:
    return any(isinstance(e, OrderUpdate) and e.status is OrderStatus.FILLED for e in events)


@pytest.fixture
def spot_sim() -> Iterator[BinanceSpotSim]:
    sim = BinanceSpotSim(seed=7, depth_interval_ms=20)
    try:
        sim.start()
        sim.pause()
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def usdm_sim() -> Iterator[BinanceUsdmSim]:
    sim = BinanceUsdmSim(seed=7, depth_interval_ms=20)
    try:
        sim.start()
        sim.pause()
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def bybit_sim() -> Iterator[BybitSim]:
    sim = BybitSim(seed=5, depth_interval_ms=20, levels=60)
    try:
        sim.start()
        sim.pause()
        yield sim
    finally:
        sim.stop()


def test_binance_spot_ws_api_subscription_and_a_taken_order(spot_sim: BinanceSpotSim) -> None:
    keys = spot_sim.api_keys(0)
    handler = binance.UserStreamHandler(
        Market.SPOT, instruments(Exchange.BINANCE, Market.SPOT, spot_sim.symbols)
    )
    ws = websocket.create_connection(f"{spot_sim.ws_url}/ws-api/v3", timeout=TIMEOUT)
    rest = SpotRest(spot_sim, keys)
    try:
        creds = Credentials(keys.hmac_key, secret=keys.hmac_secret)
        for frame in handler.open_frames(creds, now_ms()):
            ws.send(frame)
        pump(ws, handler, lambda _: handler.subscribed or handler.error is not None)
        assert handler.subscribed and handler.subscription_id is not None, handler.error
        _, _, asks = spot_sim.book("BTCUSDT")
        price, qty = asks[0]
        placed = rest.ok(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="IOC",
            quantity=str(qty),
            price=str(price),
            newClientOrderId="uds-spot-1",
        )
        assert placed["status"] == "FILLED"
        events = pump(ws, handler, lambda ev: filled(ev) and bool(of(BalanceUpdate, ev)))
        orders = [o for o in of(OrderUpdate, events) if o.client_order_id == "uds-spot-1"]
        assert orders[-1].status is OrderStatus.FILLED
        assert orders[-1].exchange_order_id == str(placed["orderId"])
        assert orders[-1].filled_qty == Decimal(placed["executedQty"]) == qty
        fills = [f for f in of(Fill, events) if f.exchange_order_id == str(placed["orderId"])]
        assert fills and sum(f.qty for f in fills) == qty
        assert all(f.symbol == "BTC/USDT" and f.price == price for f in fills)
        assert {b.asset for b in of(BalanceUpdate, events)} >= {"BTC", "USDT"}
        assert handler.malformed == 0 and handler.unmapped == 0
    finally:
        rest.close()
        ws.close()


def test_binance_usdm_listen_key_stream_and_a_taken_order(usdm_sim: BinanceUsdmSim) -> None:
    key, secret = usdm_sim.api_keys()[0]
    creds = Credentials(key, secret=secret)
    handler = binance.UserStreamHandler(
        Market.LINEAR, instruments(Exchange.BINANCE, Market.LINEAR, usdm_sim.symbols)
    )
    create = binance.create_listen_key(creds)
    with httpx.Client(base_url=usdm_sim.rest_url, timeout=TIMEOUT) as http:
        reply = http.request(create.method, create.path, headers=dict(create.headers))
        assert reply.status_code == 200, reply.text
        handler.on_listen_key(reply.content)
        keepalive = binance.keepalive_listen_key(creds)
        again = http.request(keepalive.method, keepalive.path, headers=dict(keepalive.headers))
        assert again.status_code == 200, again.text
    before = usdm_sim.connection_count()
    ws = websocket.create_connection(handler.stream_url(usdm_sim.ws_url), timeout=TIMEOUT)
    rest = UsdmRest(usdm_sim, key, secret, now_ms)
    try:
        assert usdm_sim.wait_for_connections(before + 1, TIMEOUT)
        assert handler.open_frames(creds, now_ms()) == [] and handler.subscribed
        top = rest.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT").json()
        price, qty = Decimal(top["askPrice"]), Decimal(top["askQty"])
        placed = rest.order(
            side="BUY",
            type="LIMIT",
            timeInForce="IOC",
            quantity=str(qty),
            price=str(price),
            newClientOrderId="uds-usdm-1",
        ).json()
        assert placed["status"] == "FILLED", placed
        events = pump(ws, handler, lambda ev: filled(ev) and bool(of(PositionUpdate, ev)))
        orders = [o for o in of(OrderUpdate, events) if o.client_order_id == "uds-usdm-1"]
        assert [o.status for o in orders][-1] is OrderStatus.FILLED
        assert orders[-1].symbol == "BTC/USDT:USDT" and orders[-1].avg_price == price
        fills = of(Fill, events)
        assert sum(f.qty for f in fills) == qty and all(f.fee_asset == "USDT" for f in fills)
        (position,) = [p for p in of(PositionUpdate, events) if p.symbol == "BTC/USDT:USDT"]
        assert position.qty == qty and position.entry_price == price
        assert of(BalanceUpdate, events)[0].asset == "USDT"
        assert handler.malformed == 0 and handler.unmapped == 0
    finally:
        rest.close()
        ws.close()


def test_bybit_private_stream_auth_subscribe_and_a_taken_order(bybit_sim: BybitSim) -> None:
    key, secret = bybit_sim.api_keys()[0]
    handler = bybit.UserStreamHandler(
        instruments(Exchange.BYBIT, Market.LINEAR, list(DEFAULT_SYMBOLS))
        + instruments(Exchange.BYBIT, Market.SPOT, list(DEFAULT_SYMBOLS))
    )
    ws = websocket.create_connection(bybit_sim.ws_url + bybit.PRIVATE_PATH, timeout=TIMEOUT)
    rest = BybitRest(bybit_sim)
    try:
        for frame in handler.open_frames(Credentials(key, secret=secret), now_ms()):
            ws.send(frame)
        pump(ws, handler, lambda _: handler.subscribed or handler.error is not None)
        assert handler.authenticated and handler.subscribed, handler.error
        ws.send(handler.ping_frame())
        bybit_sim.step(1)  # publish the book the order will take from
        _, _, asks = bybit_sim.book("linear", "BTCUSDT")
        price, qty = asks[0]
        created = rest.ok(
            "POST",
            "/v5/order/create",
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            timeInForce="IOC",
            qty=str(qty),
            price=str(price),
            orderLinkId="uds-bybit-1",
        )
        events = pump(
            ws,
            handler,
            lambda ev: (
                filled(ev)
                and bool(of(Fill, ev))
                and bool(of(PositionUpdate, ev))
                and bool(of(BalanceUpdate, ev))
            ),
        )
        (order,) = [o for o in of(OrderUpdate, events) if o.status is OrderStatus.FILLED]
        assert (order.exchange_order_id, order.client_order_id) == (
            created["orderId"],
            "uds-bybit-1",
        )
        assert (order.symbol, order.filled_qty, order.avg_price) == ("BTC/USDT:USDT", qty, price)
        fills = of(Fill, events)
        assert sum(f.qty for f in fills) == qty and {f.price for f in fills} == {price}
        assert all(f.exchange_order_id == created["orderId"] for f in fills)
        position = of(PositionUpdate, events)[-1]
        assert (position.symbol, position.qty) == ("BTC/USDT:USDT", qty)
        assert handler.malformed == 0 and handler.unmapped == 0
    finally:
        rest.http.close()
        ws.close()
