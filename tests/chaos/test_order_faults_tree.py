"""Issue 6, races and faults, through the real tree (``exconn.start`` with credentials,
multiprocTCPBase, simulators on 127.0.0.1) on Binance spot and USD-M, Bybit spot and linear.

An ``Engine`` actor sends the orders to the root (root -> supervisor -> ``OrderCommand``) and
keeps every reply, so the late resolution of an unknown outcome reaches it as it would reach a
trading engine; an ``AccountRecorder`` subscribes to the account topics.

Races: the simulator writes an order's private-stream events before its REST answer, or sends
its next fill twice: the engine gets ``OrderAccepted``, the subscriber gets each trade once, and
the read model holds the order FILLED with the exact quantity and fill count the simulator has.

Faults: 5xx after accept, a client timeout after accept, the socket closed during submit: the
engine gets ``OrderOutcomeUnknown``, then ``OrderAccepted`` (resolved by a client-id query); a
re-send of the same intent is refused while unknown (and once accepted); the simulator holds
exactly one order under that client id.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import msgspec
import pytest
from thespian.actors import Actor

import exconn
from exconn.messages import (
    BalanceUpdate,
    Fill,
    FillsView,
    GetFills,
    GetOrder,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderView,
    PlaceOrder,
)
from exconn.model.enums import Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.model.instruments import Instrument
from exconn.sim import BinanceSpotSim, BinanceUsdmSim, BybitSim
from exconn.sim.fault_registry import FaultKind
from tests.integration.conftest import wait_for
from tests.integration.test_order_tree import _instrument, _order_actors_up
from tests.integration.test_user_streams import (
    WAIT,
    AccountRecorder,
    account_topics,
    all_subscribed,
    of,
    record,
)
from tests.sim.spot_client import Rest as SpotRest
from tests.sim.test_bybit_client import Rest as BybitRest
from tests.sim.test_usdm_helpers import Rest as UsdmRest

ASK_S = 30.0
# exconn's REST timeout for order entry is 10 s (OrderCommandInit.rest_timeout_s): the
# simulator holds the answer longer, so the client gives up while the order exists.
HOLD_PAST_CLIENT_TIMEOUT_S = 13.0


# -- the engine -----------------------------------------------------------------------------------
class Send(msgspec.Struct, frozen=True):
    """Ask the engine to send ``messages`` to ``target``, back to back."""

    target: Any
    messages: tuple[Any, ...]


class GetReplies(msgspec.Struct, frozen=True):
    pass


class Replies(msgspec.Struct, frozen=True):
    replies: tuple[Any, ...]


class Engine(Actor):
    """Sends order commands as a trading engine would and keeps every reply in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[Any] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, Send):
            for m in message.messages:
                self.send(message.target, m)
        elif isinstance(message, GetReplies):
            self.send(sender, Replies(tuple(self.replies)))
        elif isinstance(message, OrderAccepted | OrderRejected | OrderOutcomeUnknown):
            self.replies.append(message)


def replies_of(ex: exconn.Exconn, engine: Any, cid: str) -> list[Any]:
    got = ex.system.ask(engine, GetReplies(), 10)
    assert isinstance(got, Replies), f"engine did not answer: {got!r}"
    return [r for r in got.replies if r.client_order_id == cid]


# -- one venue ------------------------------------------------------------------------------------
@dataclass
class Venue:
    exchange: str
    sim: Any
    inst: Instrument
    place_endpoint: str
    query_endpoint: str  # what OrderCommand asks to resolve an unknown outcome
    start: Callable[[], exconn.Exconn]
    top: Callable[[], tuple[Decimal, Decimal, Decimal]]  # bid, ask, ask qty
    sim_orders: Callable[[str], list[dict[str, Any]]]  # the sim's orders under a client id
    sim_trades: Callable[[str], list[str]]  # the sim's trade ids of an order (exchange id)
    close: Callable[[], None]

    def resting_buy(self, cid: str) -> PlaceOrder:
        """A limit buy 5 % under the bid: it rests (the market is paused)."""
        bid, _, _ = self.top()
        inst = self.inst
        price = _grid(bid * Decimal("0.95"), inst.tick_size, ROUND_DOWN)
        qty = inst.min_qty
        if inst.min_notional is not None and qty * price < inst.min_notional * 2:
            steps = (inst.min_notional * 2 / price / inst.step_size).to_integral_value(ROUND_UP)
            qty = steps * inst.step_size
        return PlaceOrder(
            self.exchange, inst.market, inst.symbol, OrderSide.BUY, OrderType.LIMIT, qty, price,
            client_order_id=cid,
        )  # fmt: skip

    def crossing_buy(self, cid: str) -> PlaceOrder:
        """An IOC buy of the whole best ask level: it fills at once."""
        _, ask, qty = self.top()
        inst = self.inst
        return PlaceOrder(
            self.exchange, inst.market, inst.symbol, OrderSide.BUY, OrderType.LIMIT, qty, ask,
            time_in_force=TimeInForce.IOC, client_order_id=cid,
        )  # fmt: skip


def _grid(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding) * step


def _spot_venue() -> Venue:
    sim = BinanceSpotSim(seed=7, depth_interval_ms=50)
    sim.start()
    try:
        sim.pause()
        keys = sim.api_keys(0)
        rest = SpotRest(sim, keys)
        inst = _instrument("binance", Market.SPOT, sim.rest_url, "BTC/USDT")
    except BaseException:
        sim.stop()
        raise

    def top() -> tuple[Decimal, Decimal, Decimal]:
        _, bids, asks = sim.book("BTCUSDT")
        return Decimal(str(bids[0][0])), Decimal(str(asks[0][0])), Decimal(str(asks[0][1]))

    def orders(cid: str) -> list[dict[str, Any]]:
        rows = rest.ok("GET", "/api/v3/allOrders", symbol="BTCUSDT")
        return [r for r in rows if r["clientOrderId"] == cid]

    def trades(order_id: str) -> list[str]:
        rows = rest.ok("GET", "/api/v3/myTrades", symbol="BTCUSDT", orderId=order_id)
        return [str(t["id"]) for t in rows]

    def start() -> exconn.Exconn:
        return exconn.start(
            exconn.Config.for_sim(
                sim.rest_url, sim.ws_url, binance_keys=(keys.hmac_key, keys.hmac_secret)
            )
        )

    def close() -> None:
        try:
            rest.close()
        finally:
            sim.stop()

    return Venue(
        "binance", sim, inst, "POST /api/v3/order", "GET /api/v3/order", start, top, orders,
        trades, close,
    )  # fmt: skip


def _usdm_venue() -> Venue:
    sim = BinanceUsdmSim(seed=7, depth_interval_ms=50)
    sim.start()
    try:
        sim.pause()
        key, secret = sim.api_keys()[0]
        rest = UsdmRest(sim, key, secret, lambda: time.time_ns() // 1_000_000)
        inst = _instrument("binance", Market.LINEAR, sim.rest_url, "BTC/USDT:USDT")
    except BaseException:
        sim.stop()
        raise

    def top() -> tuple[Decimal, Decimal, Decimal]:
        row = rest.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT").json()
        return Decimal(row["bidPrice"]), Decimal(row["askPrice"]), Decimal(row["askQty"])

    def orders(cid: str) -> list[dict[str, Any]]:
        # One row per order the venue holds under the id, open or closed (the simulator has
        # no allOrders: open orders plus the query by client id, de-duplicated by order id).
        rows = rest.signed("GET", "/fapi/v1/openOrders", symbol="BTCUSDT").json()
        found = {r["orderId"]: r for r in rows if r["clientOrderId"] == cid}
        one = rest.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId=cid)
        if one.status_code == 200:
            found.setdefault(one.json()["orderId"], one.json())
        return list(found.values())

    def trades(order_id: str) -> list[str]:
        rows = rest.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT").json()
        return [str(t["id"]) for t in rows if str(t["orderId"]) == order_id]

    def start() -> exconn.Exconn:
        return exconn.start(
            exconn.Config.for_sim(
                None, None, linear=(sim.rest_url, sim.ws_url), binance_keys=(key, secret)
            )
        )

    def close() -> None:
        try:
            rest.close()
        finally:
            sim.stop()

    return Venue(
        "binance", sim, inst, "POST /fapi/v1/order", "GET /fapi/v1/order", start, top, orders,
        trades, close,
    )  # fmt: skip


def _bybit_venue(market: Market) -> Venue:
    sim = BybitSim(seed=5, depth_interval_ms=50, levels=60)
    cat = str(market)  # Bybit's category: "spot" or "linear"
    symbol = "BTC/USDT:USDT" if market is Market.LINEAR else "BTC/USDT"
    sim.start()
    try:
        sim.pause()
        rest = BybitRest(sim)
        inst = _instrument("bybit", market, sim.rest_url, symbol)
    except BaseException:
        sim.stop()
        raise

    def top() -> tuple[Decimal, Decimal, Decimal]:
        sim.step(1)  # publish the book the order is priced from
        _, bids, asks = sim.book(cat, "BTCUSDT")
        return Decimal(str(bids[0][0])), Decimal(str(asks[0][0])), Decimal(str(asks[0][1]))

    def orders(cid: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for path in ("/v5/order/realtime", "/v5/order/history"):
            got = rest.ok("GET", path, category=cat, symbol="BTCUSDT", orderLinkId=cid)
            rows += got["list"]
        return list({r["orderId"]: r for r in rows}.values())

    def trades(order_id: str) -> list[str]:
        got = rest.ok("GET", "/v5/execution/list", category=cat, orderId=order_id)
        return [str(t["execId"]) for t in got["list"]]

    def start() -> exconn.Exconn:
        return exconn.start(
            exconn.Config.for_sim(
                None, None, bybit=(sim.rest_url, sim.ws_url), bybit_keys=sim.api_keys()[0],
                bybit_markets=(cat,),
            )
        )  # fmt: skip

    def close() -> None:
        try:
            rest.http.close()
        finally:
            sim.stop()

    return Venue(
        "bybit", sim, inst, "POST /v5/order/create", "GET /v5/order/realtime", start, top,
        orders, trades, close,
    )  # fmt: skip


VENUES: dict[str, Callable[[], Venue]] = {
    "binance-spot": _spot_venue,
    "binance-usdm": _usdm_venue,
    "bybit-spot": lambda: _bybit_venue(Market.SPOT),
    "bybit-linear": lambda: _bybit_venue(Market.LINEAR),
}


@dataclass
class Tree:
    venue: Venue
    ex: exconn.Exconn
    engine: Any
    recorder: Any

    @property
    def exchange(self) -> str:
        return self.venue.exchange

    def send(self, *messages: Any) -> None:
        self.ex.system.tell(self.engine, Send(self.ex.root, messages))

    def replies(self, cid: str, n: int, what: str) -> list[Any]:
        return wait_for(
            lambda: (r := replies_of(self.ex, self.engine, cid)) and len(r) >= n and r, what, WAIT
        )

    def order_query(self) -> Any:
        sup = wait_for(lambda: _order_actors_up(self.ex, self.exchange), "the order actors", WAIT)
        return sup.order_query

    def read_order(self, cid: str) -> Any:
        view = self.ex.system.ask(
            self.order_query(), GetOrder(client_order_id=cid, exchange=self.exchange), ASK_S
        )
        assert isinstance(view, OrderView), view
        return view.order

    def read_fills(self) -> list[Fill]:
        inst = self.venue.inst
        view = self.ex.system.ask(
            self.order_query(), GetFills(inst.symbol, str(inst.market)), ASK_S
        )
        assert isinstance(view, FillsView), view
        return list(view.fills)


@pytest.fixture(params=list(VENUES))
def tree(request: pytest.FixtureRequest) -> Iterator[Tree]:
    venue = VENUES[request.param]()
    ex: exconn.Exconn | None = None
    try:
        ex = venue.start()
        engine = ex.create_actor(Engine)
        recorder = ex.create_actor(AccountRecorder)
        ex.subscribe(recorder, *account_topics(venue.exchange))
        wait_for(lambda: all_subscribed(ex, venue.exchange), "the private stream", WAIT)
        wait_for(lambda: _order_actors_up(ex, venue.exchange), "the order actors", WAIT)
        yield Tree(venue, ex, engine, recorder)
    finally:
        try:
            if ex is not None:
                ex.shutdown()
        finally:
            venue.close()


# -- races ----------------------------------------------------------------------------------------
def _fills_of(tree: Tree, order_id: str) -> list[Fill]:
    events = record(tree.ex, tree.recorder).events
    return [f for f in of(Fill, events) if f.exchange_order_id == order_id]


def _crossing_fills_once(tree: Tree, cid: str) -> tuple[OrderAccepted, list[str]]:
    """Send a crossing order; the engine's answer, and the sim's trade ids for it once the
    subscriber has every one of them, each exactly once, and the read model holds it FILLED
    with the exact quantity and fill count."""
    order = tree.venue.crossing_buy(cid)
    tree.send(order)
    (reply,) = tree.replies(cid, 1, "the engine's answer")
    assert isinstance(reply, OrderAccepted), reply
    assert reply.action == "place" and reply.exchange_order_id
    oid = reply.exchange_order_id
    trades = tree.venue.sim_trades(oid)
    assert trades and len(tree.venue.sim_orders(cid)) == 1
    wait_for(
        lambda: {f.trade_id for f in _fills_of(tree, oid)} >= set(trades),
        "every fill on the subscriber's fills topic",
        WAIT,
    )
    # The venue reports the balances after the order's fill frames (and after a copy of one):
    # once the subscriber has a balance published after the last fill, OrderQuery has read
    # every fill frame of the order.
    wait_for(lambda: _settled(tree, oid), "a balance update after the order's fills", WAIT)
    got = Counter(f.trade_id for f in _fills_of(tree, oid))
    assert sorted(got) == sorted(trades) and all(n == 1 for n in got.values()), got
    assert sum((f.qty for f in _fills_of(tree, oid)), Decimal(0)) == order.qty

    view = wait_for(
        lambda: (o := tree.read_order(cid)) and o.status is OrderStatus.FILLED and o,
        "the read model's FILLED order",
        WAIT,
    )
    assert view.exchange_order_id == oid and view.filled_qty == order.qty
    held = [f.trade_id for f in tree.read_fills() if f.exchange_order_id == oid]
    assert sorted(held) == sorted(trades)  # each fill once
    assert replies_of(tree.ex, tree.engine, cid) == [reply]  # one answer, nothing after
    return reply, trades


def _settled(tree: Tree, order_id: str) -> bool:
    events = record(tree.ex, tree.recorder).events
    last_fill = max(
        (
            i
            for i, e in enumerate(events)
            if isinstance(e, Fill) and e.exchange_order_id == order_id
        ),
        default=None,
    )
    return last_fill is not None and any(
        isinstance(e, BalanceUpdate) for e in events[last_fill + 1 :]
    )


def test_stream_events_before_the_rest_ack(tree: Tree) -> None:
    tree.venue.sim.add_fault(FaultKind.STREAM_BEFORE_ACK, endpoint=tree.venue.place_endpoint)
    _crossing_fills_once(tree, f"race-ack-{tree.exchange}")
    stats = tree.venue.sim.stats()
    assert stats["streams_before_ack"] == 1, "the fault fired"
    assert stats.get("streams_not_flushed", 0) == 0


def test_a_duplicated_fill_reaches_the_subscriber_once(tree: Tree) -> None:
    tree.venue.sim.add_fault(FaultKind.DUPLICATE_FILL, symbol=tree.venue.inst.venue_symbol)
    _crossing_fills_once(tree, f"race-dup-{tree.exchange}")
    assert tree.venue.sim.stats()["fills_duplicated"] == 1, "the fill was sent twice"
    assert tree.venue.sim.faults() == []


# -- faults ---------------------------------------------------------------------------------------
def _add_after_accept(venue: Venue, kind: str) -> None:
    ep = venue.place_endpoint
    if kind == "5xx":
        venue.sim.add_fault(FaultKind.ERROR_AFTER_ACCEPT, endpoint=ep)
    elif kind == "timeout":
        # Spot and Bybit name the hold delay_s, USD-M hold_s.
        venue.sim.add_fault(
            FaultKind.TIMEOUT_AFTER_ACCEPT, endpoint=ep,
            delay_s=HOLD_PAST_CLIENT_TIMEOUT_S, hold_s=HOLD_PAST_CLIENT_TIMEOUT_S,
        )  # fmt: skip
    else:
        venue.sim.add_fault(FaultKind.DROP_AFTER_ACCEPT, endpoint=ep)


@pytest.mark.parametrize("kind", ["5xx", "timeout", "drop"])
def test_an_order_with_a_lost_answer_ends_known_and_exists_once(tree: Tree, kind: str) -> None:
    venue = tree.venue
    cid = f"fault-{kind}-{tree.exchange}"
    order = venue.resting_buy(cid)
    _add_after_accept(venue, kind)
    # The same intent twice, back to back: the second reaches OrderCommand while the first is
    # in flight or unknown (the resolving query runs on a timer, after it).
    tree.send(order, order)
    replies = tree.replies(cid, 3, "unknown, refused re-send, resolution")
    first, resend, resolution = replies[:3]
    assert isinstance(first, OrderOutcomeUnknown), replies
    assert isinstance(resend, OrderRejected) and resend.reason == "OutcomeUnknown", replies
    assert isinstance(resolution, OrderAccepted), replies
    assert resolution.action == "place" and resolution.exchange_order_id
    assert resolution.status is OrderStatus.NEW

    rows = venue.sim_orders(cid)
    assert len(rows) == 1, rows
    assert str(rows[0]["orderId"]) == resolution.exchange_order_id

    # Known now: a re-send is refused as already placed, and nothing reaches the venue.
    tree.send(order)
    later = tree.replies(cid, 4, "the answer to the re-send after the resolution")
    assert isinstance(later[3], OrderRejected) and later[3].reason == "InvalidOrder", later
    assert len(venue.sim_orders(cid)) == 1
    view = wait_for(
        lambda: (o := tree.read_order(cid)) and o.status is OrderStatus.NEW and o,
        "the read model's NEW order",
        WAIT,
    )
    assert view.exchange_order_id == resolution.exchange_order_id
    assert len(replies_of(tree.ex, tree.engine, cid)) == 4
