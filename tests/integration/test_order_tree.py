"""The order path inside the real tree (``exconn.start`` with credentials, multiprocTCPBase,
simulators on 127.0.0.1): ``ex.ask(PlaceOrder/CancelOrder)`` goes root -> supervisor ->
``OrderCommand`` and the reply comes back to the asker; private-stream events reach
subscribers of the account topics through ``OrderQuery``'s de-duplicated output, each fill
once; fills made while the private socket is down reach them once after it comes back (the
stream asks ``OrderQuery`` to reconcile by REST when it is live again)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import pytest

import exconn
from exconn.actors.order_messages import (
    FillsView,
    GetFills,
    Reconcile,
    ReconcileDone,
)
from exconn.actors.root import TreeStatus
from exconn.actors.supervisor import SupervisorStatus
from exconn.config import WsSettings
from exconn.messages import (
    CancelOrder,
    Fill,
    GetStatus,
    OrderAccepted,
    OrderRejected,
    PlaceOrder,
)
from exconn.model.enums import Market, OrderSide, OrderType, TimeInForce
from exconn.model.instruments import Instrument
from exconn.sim import BinanceSpotSim, BybitSim
from exconn.venues.driver import driver_for, venue_rest_client
from tests.integration.conftest import wait_for
from tests.integration.test_user_streams import (
    WAIT,
    AccountRecorder,
    account_topics,
    all_subscribed,
    of,
    record,
    user_streams,
)
from tests.sim.spot_client import Rest as SpotRest
from tests.sim.test_bybit_client import Rest as BybitRest

ASK_S = 30.0
# A private socket that is lost stays down for 2-4 s (the first reconnect delay is uniform in
# [initial/2, initial]): the fills of the reconciliation tests are made in that window, and
# the test checks afterwards that the stream was still down (it skips, saying so, otherwise).
SLOW_RECONNECT = WsSettings(backoff_initial_s=4.0)


def _instrument(exchange: str, market: Market, rest_url: str, symbol: str) -> Instrument:
    driver = driver_for(exchange)
    rest = venue_rest_client(exchange, market, rest_url)
    try:
        catalog = driver.load_catalog(market, rest.get)
    finally:
        rest.close()
    return next(i for i in catalog.instruments if i.symbol == symbol)


def _grid(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding) * step


def _resting_buy(exchange: str, inst: Instrument, bid: Decimal, cid: str) -> PlaceOrder:
    """A limit buy 5 % under the bid (never filled: the simulator is paused)."""
    price = _grid(bid * Decimal("0.95"), inst.tick_size, ROUND_DOWN)
    qty = inst.min_qty
    if inst.min_notional is not None and qty * price < inst.min_notional * 2:
        steps = (inst.min_notional * 2 / price / inst.step_size).to_integral_value(ROUND_UP)
        qty = steps * inst.step_size
    return PlaceOrder(
        exchange, inst.market, inst.symbol, OrderSide.BUY, OrderType.LIMIT, qty, price,
        client_order_id=cid,
    )  # fmt: skip


def _crossing_buy(exchange: str, inst: Instrument, ask: tuple[Any, Any], cid: str) -> PlaceOrder:
    """An IOC buy of the whole best ask level: it trades at once."""
    price, qty = ask
    return PlaceOrder(
        exchange, inst.market, inst.symbol, OrderSide.BUY, OrderType.LIMIT,
        Decimal(str(qty)), Decimal(str(price)), time_in_force=TimeInForce.IOC,
        client_order_id=cid,
    )  # fmt: skip


def _supervisor(ex: exconn.Exconn, exchange: str) -> SupervisorStatus | None:
    tree = ex.system.ask(ex.root, GetStatus(), 5)
    if not isinstance(tree, TreeStatus) or exchange not in tree.supervisors:
        return None
    sup = ex.system.ask(tree.supervisors[exchange], GetStatus(), 5)
    return sup if isinstance(sup, SupervisorStatus) else None


def _order_actors_up(ex: exconn.Exconn, exchange: str) -> SupervisorStatus | None:
    sup = _supervisor(ex, exchange)
    ok = sup is not None and sup.order_query is not None and sup.order_command is not None
    return sup if ok else None


def _fills_of(events: list[Any], order_ids: set[str]) -> list[Fill]:
    return [f for f in of(Fill, events) if f.exchange_order_id in order_ids]


def _filled(qty_of: dict[str, Decimal]) -> Callable[[list[Any]], list[Fill] | None]:
    """The fills of these orders once their quantities add up to each order's filled qty."""

    def check(events: list[Any]) -> list[Fill] | None:
        fills = _fills_of(events, set(qty_of))
        got: dict[str, Decimal] = {}
        for f in fills:
            got[f.exchange_order_id] = got.get(f.exchange_order_id, Decimal(0)) + f.qty
        return fills if all(got.get(oid, Decimal(0)) >= q for oid, q in qty_of.items()) else None

    return check


def _assert_once(fills: list[Fill], qty_of: dict[str, Decimal]) -> None:
    keys = Counter((f.market, f.symbol, f.trade_id) for f in fills)
    assert all(n == 1 for n in keys.values()), f"a fill reached the subscriber twice: {keys}"
    for oid, qty in qty_of.items():
        assert sum((f.qty for f in fills if f.exchange_order_id == oid), Decimal(0)) == qty


def _reconcile_again(ex: exconn.Exconn, exchange: str) -> None:
    """One more reconcile: it must publish none of the fills again."""
    sup = _order_actors_up(ex, exchange)
    assert sup is not None
    done = ex.system.ask(sup.order_query, Reconcile(), ASK_S)
    assert isinstance(done, ReconcileDone) and done.error is None, done
    assert done.report.missed_fills == 0


def _ask(ex: exconn.Exconn, message: Any) -> Any:
    reply = ex.ask(message, ASK_S)
    assert reply is not None, f"no answer to {type(message).__name__}"
    return reply


def _place_cross_cancel(
    ex: exconn.Exconn, exchange: str, inst: Instrument, bid: Decimal, ask: tuple[Any, Any]
) -> None:
    """(a) for one venue: a resting order and a crossing one through ``ex.ask``, the crossing
    one's fills on ``fills.<exchange>`` exactly once, the resting one cancelled."""
    rec = ex.create_actor(AccountRecorder)
    ex.subscribe(rec, *account_topics(exchange))
    wait_for(lambda: all_subscribed(ex, exchange), f"the {exchange} private stream", WAIT)

    resting = _ask(ex, _resting_buy(exchange, inst, bid, f"tree-{exchange}-rest"))
    assert isinstance(resting, OrderAccepted), resting
    assert resting.action == "place" and resting.exchange_order_id
    crossing = _ask(ex, _crossing_buy(exchange, inst, ask, f"tree-{exchange}-cross"))
    assert isinstance(crossing, OrderAccepted), crossing
    assert crossing.client_order_id == f"tree-{exchange}-cross" and crossing.exchange_order_id

    qty_of = {crossing.exchange_order_id: Decimal(str(ask[1]))}
    fills = wait_for(
        lambda: _filled(qty_of)(record(ex, rec).events), "the crossing order's fills", WAIT
    )
    _reconcile_again(ex, exchange)
    sup = _order_actors_up(ex, exchange)
    assert sup is not None
    view = ex.system.ask(sup.order_query, GetFills(inst.symbol, str(inst.market)), ASK_S)
    assert isinstance(view, FillsView)
    # Everything the subscriber got is what the read model holds, each once.
    fills = _fills_of(record(ex, rec).events, set(qty_of))
    _assert_once(fills, qty_of)
    held = {f.trade_id for f in view.fills if f.exchange_order_id == crossing.exchange_order_id}
    assert {f.trade_id for f in fills} == held

    cancelled = _ask(
        ex,
        CancelOrder(
            exchange=exchange,
            market=inst.market,
            symbol=inst.symbol,
            client_order_id=f"tree-{exchange}-rest",
        ),
    )
    assert isinstance(cancelled, OrderAccepted), cancelled
    assert cancelled.action == "cancel"
    assert record(ex, rec).stream_errors == []


def _stream_down(ex: exconn.Exconn, exchange: str) -> bool:
    streams = user_streams(ex, exchange)
    return bool(streams) and not any(s.subscribed for s in streams)


def _missed_while_down(
    ex: exconn.Exconn,
    exchange: str,
    drop: Callable[[], Any],
    trade: Callable[[int], tuple[str, Decimal]],
) -> None:
    """(b) for one venue: fills made at the venue while its private socket is down reach the
    subscriber exactly once after it is back."""
    rec = ex.create_actor(AccountRecorder)
    ex.subscribe(rec, *account_topics(exchange))
    wait_for(lambda: all_subscribed(ex, exchange), f"the {exchange} private stream", WAIT)
    wait_for(lambda: _order_actors_up(ex, exchange), "the order actors", WAIT)
    before = user_streams(ex, exchange)[0].reconnects

    drop()
    wait_for(lambda: _stream_down(ex, exchange), "the private socket to be lost", WAIT)
    qty_of = dict(trade(i) for i in range(2))
    if not _stream_down(ex, exchange):
        pytest.skip("the private stream came back before the fills were made: not a miss")
    wait_for(
        lambda: (s := user_streams(ex, exchange)) and s[0].reconnects > before and s[0].subscribed,
        "the private stream to come back",
        WAIT,
    )
    fills = wait_for(
        lambda: _filled(qty_of)(record(ex, rec).events),
        "the fills made while the socket was down",
        WAIT,
    )
    _reconcile_again(ex, exchange)
    fills = _fills_of(record(ex, rec).events, set(qty_of))
    _assert_once(fills, qty_of)


# -- Binance spot ---------------------------------------------------------------------------------
def _binance(sim: BinanceSpotSim, ws: WsSettings | None = None) -> exconn.Exconn:
    keys = sim.api_keys(0)
    return exconn.start(
        exconn.Config.for_sim(
            sim.rest_url, sim.ws_url, binance_keys=(keys.hmac_key, keys.hmac_secret), ws=ws
        )
    )


def test_binance_spot_orders_through_the_tree_and_fills_once(spot_sim: BinanceSpotSim) -> None:
    inst = _instrument("binance", Market.SPOT, spot_sim.rest_url, "BTC/USDT")
    ex = _binance(spot_sim)
    try:
        _, bids, asks = spot_sim.book("BTCUSDT")
        _place_cross_cancel(ex, "binance", inst, Decimal(str(bids[0][0])), asks[0])
    finally:
        ex.shutdown()


def test_binance_spot_fills_while_the_private_socket_is_down_arrive_once(
    spot_sim: BinanceSpotSim,
) -> None:
    ex = _binance(spot_sim, SLOW_RECONNECT)
    rest = SpotRest(spot_sim, spot_sim.api_keys(0))

    def trade(i: int) -> tuple[str, Decimal]:
        _, _, asks = spot_sim.book("BTCUSDT")
        price, qty = asks[0]
        placed = rest.ok(
            "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
            timeInForce="IOC", quantity=str(qty), price=str(price),
            newClientOrderId=f"tree-missed-{i}",
        )  # fmt: skip
        assert placed["status"] == "FILLED"
        return str(placed["orderId"]), Decimal(str(qty))

    try:
        # Only account topics: the private socket is the simulator's only one.
        _missed_while_down(ex, "binance", spot_sim.drop_connections, trade)
    finally:
        rest.close()
        ex.shutdown()


# -- Bybit (linear) -------------------------------------------------------------------------------
def _bybit(sim: BybitSim, ws: WsSettings | None = None) -> exconn.Exconn:
    return exconn.start(
        exconn.Config.for_sim(
            None, None, bybit=(sim.rest_url, sim.ws_url), bybit_keys=sim.api_keys()[0], ws=ws
        )
    )


def test_bybit_orders_through_the_tree_and_fills_once(bybit_sim: BybitSim) -> None:
    inst = _instrument("bybit", Market.LINEAR, bybit_sim.rest_url, "BTC/USDT:USDT")
    ex = _bybit(bybit_sim)
    try:
        bybit_sim.step(1)  # publish the book the orders are priced from
        _, bids, asks = bybit_sim.book("linear", "BTCUSDT")
        _place_cross_cancel(ex, "bybit", inst, Decimal(str(bids[0][0])), asks[0])
    finally:
        ex.shutdown()


def test_bybit_fills_while_the_private_socket_is_down_arrive_once(bybit_sim: BybitSim) -> None:
    ex = _bybit(bybit_sim, SLOW_RECONNECT)
    rest = BybitRest(bybit_sim)

    def trade(i: int) -> tuple[str, Decimal]:
        bybit_sim.step(1)
        _, _, asks = bybit_sim.book("linear", "BTCUSDT")
        price, qty = asks[0]
        created = rest.ok(
            "POST", "/v5/order/create", category="linear", symbol="BTCUSDT", side="Buy",
            orderType="Limit", timeInForce="IOC", qty=str(qty), price=str(price),
            orderLinkId=f"tree-missed-{i}",
        )  # fmt: skip
        return str(created["orderId"]), Decimal(str(qty))

    try:
        # Only account topics: the private socket is the simulator's only one.
        _missed_while_down(ex, "bybit", bybit_sim.drop_connection, trade)
    finally:
        rest.http.close()
        ex.shutdown()


def test_an_order_for_an_unconfigured_exchange_is_refused(spot_sim: BinanceSpotSim) -> None:
    ex = _binance(spot_sim)
    try:
        inst = _instrument("binance", Market.SPOT, spot_sim.rest_url, "BTC/USDT")
        order = _resting_buy("binance", inst, Decimal("60000"), "tree-nowhere")
        reply = _ask(ex, PlaceOrder(**{**_fields(order), "exchange": "kraken"}))
        assert isinstance(reply, OrderRejected), reply
        assert reply.reason == "ConfigError" and reply.client_order_id == "tree-nowhere"
    finally:
        ex.shutdown()


def _fields(order: PlaceOrder) -> dict[str, Any]:
    return {f: getattr(order, f) for f in order.__struct_fields__}
