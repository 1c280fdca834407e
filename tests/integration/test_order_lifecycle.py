"""Issue 6 acceptance: the order lifecycle on Binance spot, Binance USD-M, Bybit spot and
Bybit linear through the real tree (``exconn.start`` with keys, multiprocTCPBase, simulators
on 127.0.0.1). Every command goes through ``ex.ask`` (root -> supervisor -> OrderCommand);
after every step what the root answers to ``GetOrder`` / ``GetOpenOrders`` / ``GetFills``
(root -> supervisor -> OrderQuery) equals what the simulator says over its own REST API,
asked with the tests' own clients: the order's status, cumulative filled quantity, price and
quantity, the open-order set and the account's fills (each once).

Partial fills are deterministic: the market is paused, our buy joins the best bid whose
resting quantity is known, and a second account sells that quantity plus part of ours.

One tree per venue-market is shared by the module's tests (a module-scoped fixture): each
test uses its own client ids, and the open orders and fills are compared as wholes, so what
earlier tests left behind is checked again each time.

Amend, per venue: Bybit amends price and quantity separately; Binance USD-M modifies both at
once (``PUT /fapi/v1/order``); Binance spot has only ``order/amend/keepPriority`` (quantity
down, same price), so a price amend is refused before sending and a price move there is a
cancel and a new order (not tested here).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any, Protocol

import pytest

import exconn
from exconn.actors.order_messages import Reconcile, ReconcileDone
from exconn.messages import (
    AmendOrder,
    BalancesView,
    CancelOrder,
    Fill,
    FillsView,
    GetBalances,
    GetFills,
    GetOpenOrders,
    GetOrder,
    GetPositions,
    OrderAccepted,
    OrderRejected,
    OrdersView,
    OrderUpdate,
    OrderView,
    PlaceOrder,
    PositionsView,
    QueryRejected,
)
from exconn.model.enums import Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.model.instruments import Instrument
from exconn.sim import BinanceSpotSim, BinanceUsdmSim, BybitSim
from tests.integration.conftest import wait_for
from tests.integration.test_order_tree import _grid, _instrument, _order_actors_up
from tests.integration.test_user_streams import (
    WAIT,
    AccountRecorder,
    account_topics,
    all_subscribed,
    record,
)
from tests.sim.spot_client import Rest as SpotRest
from tests.sim.test_bybit_client import Rest as BybitRest
from tests.sim.test_usdm_helpers import Rest as UsdmRest

ASK_S = 30.0
VENUE_SYMBOL = "BTCUSDT"
# The venues' own status words (binance.md, bybit.md), read here independently of exconn.
BINANCE_STATUS = {
    "NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
BYBIT_STATUS = {
    "New": OrderStatus.NEW,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "PartiallyFilledCanceled": OrderStatus.CANCELED,
    "Rejected": OrderStatus.REJECTED,
}


# -- one order / one fill as both sides see it -----------------------------------------------------
@dataclass(frozen=True)
class Row:
    exchange_order_id: str
    client_order_id: str | None
    status: OrderStatus
    price: Decimal
    qty: Decimal
    filled: Decimal


FillRow = tuple[str, str, Decimal, Decimal]  # trade id, exchange order id, price, qty


def _rows(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: r.exchange_order_id)


class SimSide(Protocol):
    """The simulator's own account state, asked over its REST API with the tests' clients."""

    def top(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(bid, bid qty, ask, ask qty) of the engine as it is now."""
        ...

    def order(self, cid: str) -> Row | None: ...

    def open_orders(self) -> list[Row]: ...

    def fills(self) -> list[FillRow]: ...

    def counter_sell(self, price: Decimal, qty: Decimal) -> None:
        """A second account sells ``qty`` at ``price`` (IOC); all of it must trade."""
        ...

    def totals(self) -> dict[str, Decimal]:
        """Each asset's total balance (free + locked, or the wallet balance)."""
        ...

    def position(self) -> Decimal | None:
        """The signed position in the symbol (None: the market has no positions)."""
        ...

    def close(self) -> None: ...


class BinanceSpotSide:
    def __init__(self, sim: BinanceSpotSim) -> None:
        self.sim = sim
        self.rest = SpotRest(sim, sim.api_keys(0))
        self.other = SpotRest(sim, sim.api_keys(1))

    def top(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        _, bids, asks = self.sim.book(VENUE_SYMBOL)  # the engine's mirror: current at once
        return bids[0][0], bids[0][1], asks[0][0], asks[0][1]

    @staticmethod
    def row(o: dict[str, Any]) -> Row:
        return Row(
            str(o["orderId"]), o["clientOrderId"], BINANCE_STATUS[o["status"]],
            Decimal(o["price"]), Decimal(o["origQty"]), Decimal(o["executedQty"]),
        )  # fmt: skip

    def order(self, cid: str) -> Row | None:
        r = self.rest.call("GET", "/api/v3/order", symbol=VENUE_SYMBOL, origClientOrderId=cid)
        if r.status_code == 400 and r.json()["code"] == -2013:
            return None  # refused: the venue never held it
        assert r.status_code == 200, r.text
        return self.row(r.json())

    def open_orders(self) -> list[Row]:
        rows = self.rest.ok("GET", "/api/v3/openOrders", symbol=VENUE_SYMBOL)
        return _rows([self.row(o) for o in rows])

    def fills(self) -> list[FillRow]:
        rows = self.rest.ok("GET", "/api/v3/myTrades", symbol=VENUE_SYMBOL, limit=1000)
        return sorted(
            (str(t["id"]), str(t["orderId"]), Decimal(t["price"]), Decimal(t["qty"])) for t in rows
        )

    def counter_sell(self, price: Decimal, qty: Decimal) -> None:
        sold = self.other.ok(
            "POST", "/api/v3/order", symbol=VENUE_SYMBOL, side="SELL", type="LIMIT",
            timeInForce="IOC", quantity=str(qty), price=str(price),
        )  # fmt: skip
        assert Decimal(sold["executedQty"]) == qty, sold

    def totals(self) -> dict[str, Decimal]:
        account = self.rest.ok("GET", "/api/v3/account")
        return {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in account["balances"]}

    def position(self) -> Decimal | None:
        return None

    def close(self) -> None:
        self.rest.close()
        self.other.close()


class BinanceUsdmSide:
    def __init__(self, sim: BinanceUsdmSim) -> None:
        self.sim = sim

        def clock() -> int:
            return time.time_ns() // 1_000_000

        self.rest = UsdmRest(sim, *sim.api_keys()[0], clock)
        self.other = UsdmRest(sim, *sim.add_account(), clock)

    def top(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        _, bids, asks = self.sim.book(VENUE_SYMBOL)
        return bids[0][0], bids[0][1], asks[0][0], asks[0][1]

    @staticmethod
    def row(o: dict[str, Any]) -> Row:
        return Row(
            str(o["orderId"]), o["clientOrderId"], BINANCE_STATUS[o["status"]],
            Decimal(o["price"]), Decimal(o["origQty"]), Decimal(o["executedQty"]),
        )  # fmt: skip

    def _ok(self, path: str, **params: Any) -> Any:
        r = self.rest.signed("GET", path, symbol=VENUE_SYMBOL, **params)
        assert r.status_code == 200, r.text
        return r.json()

    def order(self, cid: str) -> Row | None:
        r = self.rest.signed("GET", "/fapi/v1/order", symbol=VENUE_SYMBOL, origClientOrderId=cid)
        if r.status_code == 400 and r.json()["code"] == -2013:
            return None
        assert r.status_code == 200, r.text
        return self.row(r.json())

    def open_orders(self) -> list[Row]:
        return _rows([self.row(o) for o in self._ok("/fapi/v1/openOrders")])

    def fills(self) -> list[FillRow]:
        rows = self._ok("/fapi/v1/userTrades", limit=1000)
        return sorted(
            (str(t["id"]), str(t["orderId"]), Decimal(t["price"]), Decimal(t["qty"])) for t in rows
        )

    def counter_sell(self, price: Decimal, qty: Decimal) -> None:
        sold = self.other.order(
            side="SELL", type="LIMIT", timeInForce="IOC", quantity=str(qty), price=str(price)
        ).json()
        assert Decimal(sold["executedQty"]) == qty, sold

    def totals(self) -> dict[str, Decimal]:
        r = self.rest.signed("GET", "/fapi/v2/balance")
        assert r.status_code == 200, r.text
        return {b["asset"]: Decimal(b["balance"]) for b in r.json()}

    def position(self) -> Decimal | None:
        (row,) = self._ok("/fapi/v2/positionRisk")  # one-way mode: one row, side BOTH
        return Decimal(row["positionAmt"])

    def close(self) -> None:
        self.rest.close()
        self.other.close()


class BybitSide:
    def __init__(self, sim: BybitSim, category: str) -> None:
        self.sim, self.category = sim, category
        self.rest = BybitRest(sim)
        self.other = BybitRest(sim, *sim.add_account("lifecycle-counterparty"))
        self.counter = 0

    def top(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        # Bybit's book view is the last published one: publish the engine's state first
        # (one interval of the paused market; our resting orders are far from its reach).
        self.sim.step(1)
        _, bids, asks = self.sim.book(self.category, VENUE_SYMBOL)
        return bids[0][0], bids[0][1], asks[0][0], asks[0][1]

    @staticmethod
    def row(o: dict[str, Any]) -> Row:
        return Row(
            o["orderId"], o["orderLinkId"] or None, BYBIT_STATUS[o["orderStatus"]],
            Decimal(o["price"]), Decimal(o["qty"]), Decimal(o["cumExecQty"]),
        )  # fmt: skip

    def _list(self, rest: BybitRest, path: str, **params: Any) -> list[dict[str, Any]]:
        result = rest.ok("GET", path, category=self.category, symbol=VENUE_SYMBOL, **params)
        assert not result.get("nextPageCursor"), "more than one page: raise the limit"
        return list(result["list"])

    def order(self, cid: str) -> Row | None:
        # openOnly=1: open and recently closed orders
        rows = self._list(self.rest, "/v5/order/realtime", orderLinkId=cid, openOnly=1)
        rows = rows or self._list(self.rest, "/v5/order/history", orderLinkId=cid)
        return self.row(rows[0]) if rows else None

    def open_orders(self) -> list[Row]:
        return _rows([self.row(o) for o in self._list(self.rest, "/v5/order/realtime", limit=50)])

    def fills(self) -> list[FillRow]:
        rows = self._list(self.rest, "/v5/execution/list", limit=100)
        return sorted(
            (e["execId"], e["orderId"], Decimal(e["execPrice"]), Decimal(e["execQty"]))
            for e in rows
        )

    def counter_sell(self, price: Decimal, qty: Decimal) -> None:
        self.counter += 1
        cid = f"counter-{self.category}-{self.counter}"
        self.other.ok(
            "POST", "/v5/order/create", category=self.category, symbol=VENUE_SYMBOL,
            side="Sell", orderType="Limit", timeInForce="IOC", qty=str(qty), price=str(price),
            orderLinkId=cid,
        )  # fmt: skip
        (sold,) = self._list(self.other, "/v5/order/realtime", orderLinkId=cid, openOnly=1)
        assert Decimal(sold["cumExecQty"]) == qty, sold

    def totals(self) -> dict[str, Decimal]:
        result = self.rest.ok("GET", "/v5/account/wallet-balance", accountType="UNIFIED")
        (account,) = result["list"]
        return {c["coin"]: Decimal(c["walletBalance"]) for c in account["coin"]}

    def position(self) -> Decimal | None:
        if self.category == "spot":
            return None
        rows = self._list(self.rest, "/v5/position/list")
        sign = {"Buy": 1, "Sell": -1, "": 0, "None": 0}
        return sum((sign[r["side"]] * Decimal(r["size"]) for r in rows), Decimal(0))

    def close(self) -> None:
        self.rest.http.close()
        self.other.http.close()


# -- the venue under test ------------------------------------------------------------------------
@dataclass
class Venue:
    tag: str
    exchange: str
    market: Market
    inst: Instrument
    ex: exconn.Exconn
    sim: SimSide

    @property
    def symbol(self) -> str:
        return self.inst.symbol

    def ask(self, message: Any) -> Any:
        reply = self.ex.ask(message, ASK_S)
        assert reply is not None, f"no answer to {type(message).__name__}"
        return reply

    def qty(self, price: Decimal) -> Decimal:
        """The smallest quantity the venue takes at ``price`` (min qty and notional), with a
        margin so that half of twice it is still an order of its own."""
        inst = self.inst
        qty = inst.min_qty
        if inst.min_notional is not None and qty * price < inst.min_notional * 2:
            qty = _grid(inst.min_notional * 2 / price, inst.step_size, ROUND_UP)
        return qty

    def buy(
        self, cid: str, qty: Decimal, price: Decimal, tif: TimeInForce = TimeInForce.GTC, **kw: Any
    ) -> PlaceOrder:
        return PlaceOrder(
            self.exchange, self.market, self.symbol, OrderSide.BUY, OrderType.LIMIT, qty, price,
            time_in_force=tif, client_order_id=cid, **kw,
        )  # fmt: skip

    def resting_buy(self, cid: str) -> tuple[PlaceOrder, Decimal]:
        """A buy 5 % under the bid (the paused market never reaches it), of twice the
        smallest quantity; and that smallest quantity."""
        bid = self.sim.top()[0]
        price = _grid(bid * Decimal("0.95"), self.inst.tick_size, ROUND_DOWN)
        unit = self.qty(price)
        return self.buy(cid, 2 * unit, price), unit

    def cid(self, step: str) -> str:
        return f"lc-{self.tag}-{step}"


def _started(ex: exconn.Exconn, exchange: str) -> None:
    rec = ex.create_actor(AccountRecorder)
    ex.subscribe(rec, *account_topics(exchange))
    wait_for(lambda: all_subscribed(ex, exchange), f"the {exchange} private stream", WAIT)
    wait_for(lambda: _order_actors_up(ex, exchange), "the order actors", WAIT)
    assert record(ex, rec).stream_errors == []


@pytest.fixture(
    scope="module", params=["binance-spot", "binance-usdm", "bybit-spot", "bybit-linear"]
)
def venue(request: pytest.FixtureRequest) -> Iterator[Venue]:
    tag: str = request.param
    sim: Any
    if tag == "binance-spot":
        sim = BinanceSpotSim(seed=7, depth_interval_ms=50)
    elif tag == "binance-usdm":
        sim = BinanceUsdmSim(seed=7, depth_interval_ms=50)
    else:
        sim = BybitSim(seed=5, depth_interval_ms=50, levels=60)
    side: SimSide | None = None
    ex: exconn.Exconn | None = None
    try:
        sim.start()
        sim.pause()  # a still market: only the tests trade (and step Bybit's to publish it)
        if tag == "binance-spot":
            exchange, market = "binance", Market.SPOT
            keys = sim.api_keys(0)
            config = exconn.Config.for_sim(
                sim.rest_url, sim.ws_url, binance_keys=(keys.hmac_key, keys.hmac_secret)
            )
            side = BinanceSpotSide(sim)
        elif tag == "binance-usdm":
            exchange, market = "binance", Market.LINEAR
            config = exconn.Config.for_sim(
                None, None, linear=(sim.rest_url, sim.ws_url), binance_keys=sim.api_keys()[0]
            )
            side = BinanceUsdmSide(sim)
        else:
            exchange = "bybit"
            market = Market.SPOT if tag == "bybit-spot" else Market.LINEAR
            config = exconn.Config.for_sim(
                None, None, bybit=(sim.rest_url, sim.ws_url), bybit_keys=sim.api_keys()[0],
                bybit_markets=(str(market),),
            )  # fmt: skip
            side = BybitSide(sim, str(market))
        symbol = "BTC/USDT" if market is Market.SPOT else "BTC/USDT:USDT"
        inst = _instrument(exchange, market, sim.rest_url, symbol)
        ex = exconn.start(config)
        _started(ex, exchange)
        yield Venue(tag, exchange, market, inst, ex, side)
    finally:
        try:
            if ex is not None:
                ex.shutdown()
        finally:
            if side is not None:
                side.close()
            sim.stop()


# -- what exconn says, through the root ------------------------------------------------------------
def _row(o: OrderUpdate) -> Row:
    return Row(
        o.exchange_order_id, o.client_order_id, o.status, o.price or Decimal(0), o.qty,
        o.filled_qty,
    )  # fmt: skip


def _fill_row(f: Fill) -> FillRow:
    return (f.trade_id, f.exchange_order_id, f.price, f.qty)


@dataclass(frozen=True)
class State:
    order: Row | None
    open_orders: list[Row]
    fills: list[FillRow]


def exconn_state(v: Venue, cid: str) -> State:
    market = str(v.market)
    view = v.ask(GetOrder(exchange=v.exchange, market=market, client_order_id=cid))
    assert isinstance(view, OrderView), view
    open_orders = v.ask(GetOpenOrders(v.symbol, market, v.exchange))
    assert isinstance(open_orders, OrdersView), open_orders
    fills = v.ask(GetFills(v.symbol, market, v.exchange))
    assert isinstance(fills, FillsView), fills
    return State(
        None if view.order is None else _row(view.order),
        _rows([_row(o) for o in open_orders.orders]),
        sorted(_fill_row(f) for f in fills.fills),
    )


def sim_state(v: Venue, cid: str) -> State:
    return State(v.sim.order(cid), v.sim.open_orders(), v.sim.fills())


def _agree(ours: State, theirs: State) -> bool:
    if theirs.order is None:
        # Refused by the venue: it never held the order; exconn keeps it as REJECTED.
        order_ok = ours.order is not None and ours.order.status is OrderStatus.REJECTED
    else:
        order_ok = ours.order == theirs.order
    return order_ok and ours.open_orders == theirs.open_orders and ours.fills == theirs.fills


def settled(v: Venue, cid: str) -> State:
    """Waits (bounded) until exconn's answers equal the simulator's state; returns the
    simulator's. The stream events of a step may still be on their way when its reply is."""
    last: list[tuple[State, State]] = []

    def check() -> State | None:
        theirs = sim_state(v, cid)
        ours = exconn_state(v, cid)
        last[:] = [(ours, theirs)]
        return theirs if _agree(ours, theirs) else None

    try:
        return wait_for(check, f"{v.tag} {cid}: exconn's answers to equal the simulator", WAIT)
    except pytest.fail.Exception:
        ours, theirs = last[0]
        pytest.fail(f"{v.tag} {cid} never agreed:\n exconn: {ours}\n sim:    {theirs}")


def fills_of(state: State, order: Row) -> list[FillRow]:
    return [f for f in state.fills if f[1] == order.exchange_order_id]


def _accepted(reply: Any, cid: str) -> OrderAccepted:
    assert isinstance(reply, OrderAccepted), reply
    assert reply.client_order_id == cid
    return reply


def account_settled(v: Venue) -> tuple[dict[str, Decimal], Decimal | None]:
    """Waits (bounded) until exconn's balances (of the symbol's assets) and position answered
    through the root equal the simulator's; returns the simulator's."""
    assets = {v.inst.base, v.inst.quote} if v.market is Market.SPOT else {v.inst.settle}
    last: list[Any] = []

    def check() -> tuple[dict[str, Decimal], Decimal | None] | None:
        held = v.sim.totals()
        theirs = ({a: held.get(a, Decimal(0)) for a in assets if a}, v.sim.position())
        balances = v.ask(GetBalances(exchange=v.exchange))
        assert isinstance(balances, BalancesView), balances
        ours_totals = {
            b.asset: (b.total if b.total is not None else (b.free or 0) + (b.locked or 0))
            for b in balances.balances
            if b.asset in assets
        }
        ours_position: Decimal | None = None
        if v.market is Market.LINEAR:
            positions = v.ask(GetPositions(v.symbol, str(v.market), v.exchange))
            assert isinstance(positions, PositionsView), positions
            ours_position = sum((p.qty for p in positions.positions), Decimal(0))
        ours = (ours_totals, ours_position)
        last[:] = [(ours, theirs)]
        return theirs if ours == theirs else None

    try:
        return wait_for(check, f"{v.tag}: balances and positions to equal the simulator", WAIT)
    except pytest.fail.Exception:
        ours, theirs = last[0]
        pytest.fail(f"{v.tag} account never agreed:\n exconn: {ours}\n sim:    {theirs}")


# -- the lifecycle matrix ------------------------------------------------------------------------
def test_new_partially_filled_filled(venue: Venue) -> None:
    v, cid = venue, venue.cid("partial")
    bid, bid_qty, _, _ = v.sim.top()
    unit = v.qty(bid)
    _accepted(v.ask(v.buy(cid, 2 * unit, bid)), cid)  # joins the best bid, behind bid_qty
    state = settled(v, cid)
    assert state.order is not None and state.order.status is OrderStatus.NEW
    assert state.order in state.open_orders and fills_of(state, state.order) == []

    v.sim.counter_sell(bid, bid_qty + unit)  # takes the level before ours, then half of ours
    state = settled(v, cid)
    assert state.order is not None and state.order.status is OrderStatus.PARTIALLY_FILLED
    assert state.order.filled == unit and state.order in state.open_orders
    assert [f[3] for f in fills_of(state, state.order)] == [unit]

    v.sim.counter_sell(bid, unit)
    state = settled(v, cid)
    assert state.order is not None and state.order.status is OrderStatus.FILLED
    assert state.order.filled == 2 * unit and state.order not in state.open_orders
    assert [f[3] for f in fills_of(state, state.order)] == [unit, unit]
    _, position = account_settled(v)
    assert v.market is Market.SPOT or position, "the fills opened a position"


def test_cancel(venue: Venue) -> None:
    v, cid = venue, venue.cid("cancel")
    order, _ = v.resting_buy(cid)
    _accepted(v.ask(order), cid)
    state = settled(v, cid)
    assert state.order is not None and state.order.status is OrderStatus.NEW
    cancel = CancelOrder(exchange=v.exchange, market=v.market, symbol=v.symbol, client_order_id=cid)
    assert _accepted(v.ask(cancel), cid).action == "cancel"
    state = settled(v, cid)
    assert state.order is not None and state.order.status is OrderStatus.CANCELED
    assert all(o.client_order_id != cid for o in state.open_orders)
    account_settled(v)  # what the order held is free again on both sides


def test_amend(venue: Venue) -> None:
    v, cid = venue, venue.cid("amend")
    order, unit = v.resting_buy(cid)
    assert order.price is not None
    _accepted(v.ask(order), cid)
    settled(v, cid)
    lower = order.price - 10 * v.inst.tick_size

    def amend(**changes: Any) -> Any:
        return v.ask(
            AmendOrder(
                exchange=v.exchange, market=v.market, symbol=v.symbol, client_order_id=cid,
                **changes,
            )
        )  # fmt: skip

    if v.tag == "binance-spot":
        # keepPriority changes the quantity only (down): a price amend is refused unsent.
        refused = amend(price=lower)
        assert isinstance(refused, OrderRejected), refused
        assert refused.reason == "InvalidOrder" and refused.code is None
        assert _accepted(amend(qty=unit), cid).action == "amend"
        state = settled(v, cid)
        assert state.order is not None and (state.order.qty, state.order.price) == (
            unit,
            order.price,
        )
    elif v.tag == "binance-usdm":
        # PUT /fapi/v1/order: side, quantity and price together.
        assert _accepted(amend(side=OrderSide.BUY, qty=3 * unit, price=lower), cid)
        state = settled(v, cid)
        assert state.order is not None and (state.order.qty, state.order.price) == (
            3 * unit,
            lower,
        )
    else:
        _accepted(amend(price=lower), cid)
        state = settled(v, cid)
        assert state.order is not None and state.order.price == lower
        assert state.order.qty == 2 * unit
        _accepted(amend(qty=3 * unit), cid)
        state = settled(v, cid)
        assert state.order is not None and (state.order.qty, state.order.price) == (
            3 * unit,
            lower,
        )
    assert state.order.status is OrderStatus.NEW and state.order in state.open_orders


def test_reject_for_insufficient_balance(venue: Venue) -> None:
    v, cid = venue, venue.cid("reject")
    order, _ = v.resting_buy(cid)
    assert order.price is not None
    # Worth more than any of the simulator's accounts holds or margins (50 million), within
    # the instrument's limits so that exconn's own validation lets it go.
    worth = Decimal(50_000_000)
    if v.inst.max_notional is not None:
        worth = min(worth, v.inst.max_notional * Decimal("0.9"))
    huge = _grid(worth / order.price, v.inst.step_size, ROUND_DOWN)
    assert v.inst.max_qty is None or huge <= v.inst.max_qty
    reply = v.ask(v.buy(cid, huge, order.price))
    assert isinstance(reply, OrderRejected), reply
    assert reply.code is not None, "the venue refused it, not exconn's validation"
    assert reply.reason == "InsufficientFunds", reply
    state = settled(v, cid)
    assert state.order is None  # the venue never held it; exconn: REJECTED (see _agree)


def test_ioc_expires_unfilled(venue: Venue) -> None:
    v, cid = venue, venue.cid("ioc")
    bid = v.sim.top()[0]
    before = v.sim.fills()
    _accepted(v.ask(v.buy(cid, v.qty(bid), bid, TimeInForce.IOC)), cid)
    state = settled(v, cid)
    assert state.order is not None and state.order.filled == 0
    # Binance EXPIRED; Bybit "Cancelled" (rejectReason EC_NoImmediateQtyToFill).
    want = OrderStatus.EXPIRED if v.exchange == "binance" else OrderStatus.CANCELED
    assert state.order.status is want and state.fills == before


def test_fok_expires_when_it_cannot_fill_whole(venue: Venue) -> None:
    v, cid = venue, venue.cid("fok")
    _, _, ask, ask_qty = v.sim.top()
    qty = ask_qty + v.qty(ask)  # more than rests at that price
    before = v.sim.fills()
    _accepted(v.ask(v.buy(cid, qty, ask, TimeInForce.FOK)), cid)
    state = settled(v, cid)
    assert state.order is not None and state.order.filled == 0
    want = OrderStatus.EXPIRED if v.exchange == "binance" else OrderStatus.CANCELED
    assert state.order.status is want and state.fills == before, "nothing traded"


def test_post_only_that_would_cross_is_refused(venue: Venue) -> None:
    v, cid = venue, venue.cid("postonly")
    ask = v.sim.top()[2]
    before = v.sim.fills()
    reply = v.ask(v.buy(cid, v.qty(ask), ask, post_only=True))
    state = settled(v, cid)
    assert state.fills == before, "a post-only order never takes"
    if v.exchange == "binance":
        # Spot LIMIT_MAKER -2010, USD-M GTX -5022: refused, never held by the venue.
        assert isinstance(reply, OrderRejected) and reply.code is not None, reply
        assert state.order is None
    else:
        # Bybit takes it, then cancels it (rejectReason EC_PostOnlyWillTakeLiquidity).
        _accepted(reply, cid)
        assert state.order is not None and state.order.status is OrderStatus.CANCELED
        assert state.order.filled == 0


def test_a_reconcile_after_the_steps_finds_nothing_missed(venue: Venue) -> None:
    """Last per venue: the REST picture (USD-M fills through ``GET /fapi/v1/userTrades``)
    agrees with what the streams built; nothing is published again."""
    v = venue
    sup = _order_actors_up(v.ex, v.exchange)
    assert sup is not None
    done = v.ex.system.ask(sup.order_query, Reconcile(), ASK_S)
    assert isinstance(done, ReconcileDone) and done.error is None, done
    assert done.report.missed_fills == 0 and done.report.orders_changed == 0, done.report
    ours, theirs = exconn_state(v, "none"), sim_state(v, "none")
    assert ours.open_orders == theirs.open_orders and ours.fills == theirs.fills
    assert len(ours.fills) >= 2, "the matrix traded"


# -- routing without credentials -----------------------------------------------------------------
@pytest.fixture(scope="module")
def keyless() -> Iterator[exconn.Exconn]:
    sim = BinanceSpotSim(seed=3, depth_interval_ms=50)
    ex: exconn.Exconn | None = None
    try:
        sim.start()
        ex = exconn.start(exconn.Config.for_sim(sim.rest_url, sim.ws_url))
        yield ex
    finally:
        try:
            if ex is not None:
                ex.shutdown()
        finally:
            sim.stop()


@pytest.mark.parametrize(
    ("query", "reason", "words"),
    [
        (GetOpenOrders(exchange="binance"), "ConfigError", "no credentials"),
        (GetOrder(exchange="binance", client_order_id="x"), "ConfigError", "no credentials"),
        (GetFills(exchange="kraken"), "ConfigError", "not configured"),
        (GetFills(), "ConfigError", "exchange="),
    ],
    ids=["open-orders-no-keys", "order-no-keys", "unknown-exchange", "no-exchange"],
)
def test_a_query_nobody_can_answer_gets_a_typed_refusal(
    keyless: exconn.Exconn, query: Any, reason: str, words: str
) -> None:
    reply = keyless.ask(query, ASK_S)
    assert isinstance(reply, QueryRejected), reply
    assert reply.reason == reason and words in reply.message and reply.query == query
