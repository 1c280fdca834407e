"""Order entry over the venues' WebSocket (``Config.for_sim(..., order_entry="ws")``) through
the real tree against the simulators: Binance spot's WebSocket API (``order.place`` /
``order.cancel``) and Bybit's ``/v5/trade`` (``order.create`` / ``amend`` / ``cancel``).

What is proven: the replies are the REST path's (same kinds and fields, venue refusals mapped
by the same tables); the orders really went over the WebSocket (``OrderCommand`` made no REST
order request); an answer lost with the socket (a drop after the venue executed the order,
or no answer within the timeout) is ``OrderOutcomeUnknown``, resolved by query to
``OrderAccepted``, with exactly one order at the venue; the next order opens a new socket."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import exconn
from exconn.actors.order_messages import GetOrderActorInfo, OrderActorInfo
from exconn.messages import (
    AmendOrder,
    CancelOrder,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    PlaceOrder,
)
from exconn.model.enums import Market, OrderSide, OrderStatus, OrderType
from exconn.model.instruments import Instrument
from exconn.sim import BinanceSpotSim, BybitSim
from tests.integration.conftest import wait_for
from tests.integration.test_order_tree import (
    ASK_S,
    _instrument,
    _order_actors_up,
    _resting_buy,
)
from tests.integration.test_user_streams import WAIT
from tests.sim.spot_client import Rest as SpotRest
from tests.sim.test_bybit_client import Rest as BybitRest


def _ask(ex: exconn.Exconn, message: Any) -> Any:
    reply = ex.ask(message, ASK_S)
    assert reply is not None, f"no answer to {type(message).__name__}"
    return reply


def _command_info(ex: exconn.Exconn, exchange: str) -> OrderActorInfo:
    sup = wait_for(lambda: _order_actors_up(ex, exchange), "the order actors", WAIT)
    info = ex.system.ask(sup.order_command, GetOrderActorInfo(), ASK_S)
    assert isinstance(info, OrderActorInfo), info
    return info


def _binance(sim: BinanceSpotSim) -> exconn.Exconn:
    keys = sim.api_keys(0)
    return exconn.start(
        exconn.Config.for_sim(
            sim.rest_url,
            sim.ws_url,
            binance_keys=(keys.hmac_key, keys.hmac_secret),
            order_entry="ws",
        )
    )


def _bybit(sim: BybitSim) -> exconn.Exconn:
    return exconn.start(
        exconn.Config.for_sim(
            None,
            None,
            bybit=(sim.rest_url, sim.ws_url),
            bybit_keys=sim.api_keys()[0],
            bybit_markets=("linear",),
            order_entry="ws",
        )
    )


def _spot_rows(rest: SpotRest, cid: str) -> list[dict[str, Any]]:
    rows = rest.ok("GET", "/api/v3/allOrders", symbol="BTCUSDT")
    return [r for r in rows if r["clientOrderId"] == cid]


def _bybit_rows(rest: BybitRest, cid: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in ("/v5/order/realtime", "/v5/order/history"):
        result = rest.ok("GET", path, category="linear", symbol="BTCUSDT", orderLinkId=cid)
        rows += [r for r in result["list"] if r["orderLinkId"] == cid]
    # An order may be listed by both (open and recently closed ones): one per order id.
    return list({r["orderId"]: r for r in rows}.values())


def _bid(sim: BinanceSpotSim) -> Decimal:
    _, bids, _ = sim.book("BTCUSDT")
    return Decimal(str(bids[0][0]))


# -- Binance spot: WebSocket API ------------------------------------------------------------------
def test_binance_spot_place_and_cancel_over_the_websocket_api(spot_sim: BinanceSpotSim) -> None:
    inst = _instrument("binance", Market.SPOT, spot_sim.rest_url, "BTC/USDT")
    ex = _binance(spot_sim)
    rest = SpotRest(spot_sim, spot_sim.api_keys(0))
    try:
        placed = _ask(ex, _resting_buy("binance", inst, _bid(spot_sim), "ws-bn-1"))
        assert isinstance(placed, OrderAccepted), placed
        # What the REST path answers with newOrderRespType=RESULT: id, status, time.
        assert placed.action == "place" and placed.client_order_id == "ws-bn-1"
        assert placed.status is OrderStatus.NEW and placed.venue_status == "NEW"
        assert placed.ts is not None
        (row,) = _spot_rows(rest, "ws-bn-1")
        assert str(row["orderId"]) == placed.exchange_order_id

        # The simulated account holds 8.33333 BTC: selling 9 is refused by the venue.
        too_big = PlaceOrder(
            "binance", Market.SPOT, "BTC/USDT", OrderSide.SELL, OrderType.LIMIT,
            Decimal(9), _above(inst, spot_sim), client_order_id="ws-bn-broke",
        )  # fmt: skip
        refused = _ask(ex, too_big)
        assert isinstance(refused, OrderRejected), refused
        assert refused.reason == "InsufficientFunds" and refused.code == -2010, refused

        cancelled = _ask(
            ex,
            CancelOrder(
                exchange="binance", market=Market.SPOT, symbol="BTC/USDT", client_order_id="ws-bn-1"
            ),
        )
        assert isinstance(cancelled, OrderAccepted), cancelled
        assert cancelled.action == "cancel" and cancelled.venue_status == "CANCELED"
        assert cancelled.exchange_order_id == placed.exchange_order_id
        assert _spot_rows(rest, "ws-bn-1")[0]["status"] == "CANCELED"
        # Everything went over the WebSocket API: no REST order request was made.
        assert _command_info(ex, "binance").rest_requests == 0
    finally:
        rest.close()
        ex.shutdown()


def _above(inst: Instrument, sim: BinanceSpotSim) -> Decimal:
    """A sell price 5 % over the bid: it rests."""
    return (_bid(sim) * Decimal("1.05") / inst.tick_size).to_integral_value() * inst.tick_size


def test_binance_spot_an_answer_not_received_in_time_is_unknown_then_resolved(
    spot_sim: BinanceSpotSim,
) -> None:
    """The venue executes ``order.place`` but answers only after the session's timeout."""
    inst = _instrument("binance", Market.SPOT, spot_sim.rest_url, "BTC/USDT")
    ex = _binance(spot_sim)
    rest = SpotRest(spot_sim, spot_sim.api_keys(0))
    try:
        _command_info(ex, "binance")  # the tree is up before the fault is armed
        spot_sim.add_fault("timeout_after_accept", endpoint="order.place", count=1, delay_s=600)
        first = _ask(ex, _resting_buy("binance", inst, _bid(spot_sim), "ws-bn-late"))
        assert isinstance(first, OrderOutcomeUnknown), first
        assert first.client_order_id == "ws-bn-late"
        resolution = ex.system.listen(ASK_S)
        assert isinstance(resolution, OrderAccepted), resolution
        rows = _spot_rows(rest, "ws-bn-late")
        assert len(rows) == 1 and str(rows[0]["orderId"]) == resolution.exchange_order_id

        # The next order opens a fresh socket and goes through.
        after = _ask(ex, _resting_buy("binance", inst, _bid(spot_sim), "ws-bn-after"))
        assert isinstance(after, OrderAccepted), after
        assert len(_spot_rows(rest, "ws-bn-after")) == 1
    finally:
        rest.close()
        ex.shutdown()


# -- Bybit: /v5/trade -----------------------------------------------------------------------------
def test_bybit_place_amend_cancel_over_v5_trade(bybit_sim: BybitSim) -> None:
    inst = _instrument("bybit", Market.LINEAR, bybit_sim.rest_url, "BTC/USDT:USDT")
    ex = _bybit(bybit_sim)
    rest = BybitRest(bybit_sim)
    try:
        bybit_sim.step(1)
        _, bids, _ = bybit_sim.book("linear", "BTCUSDT")
        order = _resting_buy("bybit", inst, Decimal(str(bids[0][0])), "ws-bb-1")
        placed = _ask(ex, order)
        assert isinstance(placed, OrderAccepted), placed
        assert placed.action == "place" and placed.client_order_id == "ws-bb-1"
        (row,) = _bybit_rows(rest, "ws-bb-1")
        assert row["orderId"] == placed.exchange_order_id

        assert order.price is not None
        new_price = order.price - inst.tick_size
        amended = _ask(
            ex,
            AmendOrder(
                exchange="bybit", market=Market.LINEAR, symbol="BTC/USDT:USDT",
                client_order_id="ws-bb-1", price=new_price,
            ),
        )  # fmt: skip
        assert isinstance(amended, OrderAccepted), amended
        assert amended.action == "amend" and amended.exchange_order_id == placed.exchange_order_id
        assert Decimal(_bybit_rows(rest, "ws-bb-1")[0]["price"]) == new_price

        cancelled = _ask(
            ex,
            CancelOrder(
                exchange="bybit", market=Market.LINEAR, symbol="BTC/USDT:USDT",
                client_order_id="ws-bb-1",
            ),
        )  # fmt: skip
        assert isinstance(cancelled, OrderAccepted), cancelled
        assert cancelled.action == "cancel"
        assert _bybit_rows(rest, "ws-bb-1")[0]["orderStatus"] == "Cancelled"

        # A venue refusal maps as on REST: the order is gone.
        again = _ask(
            ex,
            CancelOrder(
                exchange="bybit", market=Market.LINEAR, symbol="BTC/USDT:USDT",
                client_order_id="ws-bb-1",
            ),
        )  # fmt: skip
        assert isinstance(again, OrderRejected), again
        assert again.reason == "OrderNotFound" and again.code == 110001, again
        assert _command_info(ex, "bybit").rest_requests == 0
    finally:
        ex.shutdown()


def test_bybit_a_socket_dropped_during_a_submit_is_unknown_then_resolved_once(
    bybit_sim: BybitSim,
) -> None:
    """The venue executes ``order.create`` and the socket is cut before the answer."""
    inst = _instrument("bybit", Market.LINEAR, bybit_sim.rest_url, "BTC/USDT:USDT")
    ex = _bybit(bybit_sim)
    rest = BybitRest(bybit_sim)
    try:
        bybit_sim.step(1)
        _, bids, _ = bybit_sim.book("linear", "BTCUSDT")
        bid = Decimal(str(bids[0][0]))
        _command_info(ex, "bybit")
        bybit_sim.add_fault("drop", endpoint="order.create", count=1)
        first = _ask(ex, _resting_buy("bybit", inst, bid, "ws-bb-drop"))
        assert isinstance(first, OrderOutcomeUnknown), first
        assert first.client_order_id == "ws-bb-drop"
        resolution = ex.system.listen(ASK_S)
        assert isinstance(resolution, OrderAccepted), resolution
        rows = _bybit_rows(rest, "ws-bb-drop")
        assert len(rows) == 1 and rows[0]["orderId"] == resolution.exchange_order_id
        assert bybit_sim.stats()["connections_dropped"] >= 1

        after = _ask(ex, _resting_buy("bybit", inst, bid, "ws-bb-after"))
        assert isinstance(after, OrderAccepted), after
        assert len(_bybit_rows(rest, "ws-bb-after")) == 1
        # One order each: nothing was sent twice.
        assert len(_bybit_rows(rest, "ws-bb-drop")) == 1
    finally:
        ex.shutdown()


def test_bybit_a_socket_cut_while_idle_is_replaced_before_the_next_order(
    bybit_sim: BybitSim,
) -> None:
    """The venue cuts the idle order socket: the next order finds it out before sending and
    goes through on a new socket, accepted (not unknown)."""
    inst = _instrument("bybit", Market.LINEAR, bybit_sim.rest_url, "BTC/USDT:USDT")
    ex = _bybit(bybit_sim)
    rest = BybitRest(bybit_sim)
    try:
        bid = _bid_bybit(bybit_sim)
        first = _ask(ex, _resting_buy("bybit", inst, bid, "ws-bb-idle-1"))
        assert isinstance(first, OrderAccepted), first
        (trade,) = [c["id"] for c in bybit_sim.connections() if c["channel"] == "trade"]
        bybit_sim.drop_connection(trade)
        wait_for(
            lambda: all(c["id"] != trade for c in bybit_sim.connections()),
            "the simulator to close the order socket",
            WAIT,
        )
        second = _ask(ex, _resting_buy("bybit", inst, bid, "ws-bb-idle-2"))
        assert isinstance(second, OrderAccepted), second
        assert len(_bybit_rows(rest, "ws-bb-idle-2")) == 1
        assert [c for c in bybit_sim.connections() if c["channel"] == "trade"]
        assert _command_info(ex, "bybit").rest_requests == 0
    finally:
        ex.shutdown()


def _bid_bybit(sim: BybitSim) -> Decimal:
    sim.step(1)
    _, bids, _ = sim.book("linear", "BTCUSDT")
    return Decimal(str(bids[0][0]))
