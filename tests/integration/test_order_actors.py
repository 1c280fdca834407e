"""OrderCommand and OrderQuery, each spawned directly in a multiprocTCPBase system, against the
Binance spot simulator on 127.0.0.1: placement, fill, cancel, pre-trade refusal, an unknown
outcome resolved by query (one order at the venue, the re-send refused), and a restarted
OrderQuery reconciling orders and fills exactly once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import msgspec
import pytest
from thespian.actors import ActorSystem

from exconn.actors.order_command import OrderCommand
from exconn.actors.order_messages import (
    FillsView,
    GetFills,
    GetOpenOrders,
    GetOrder,
    GetOrderActorInfo,
    OrderActorInfo,
    OrderActorStarted,
    OrderCommandInit,
    OrderQueryInit,
    OrderView,
    Reconcile,
    ReconcileDone,
    SetQueryActor,
)
from exconn.actors.order_query import OrderQuery
from exconn.config import SEAL_KEY_ENV, SealedCredentials, new_seal_key
from exconn.handle import SYSTEM_BASE, TRANSMIT_SETTINGS, free_port
from exconn.logs import THESPIAN_LOG_DEFS
from exconn.messages import (
    CancelOrder,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    PlaceOrder,
)
from exconn.model.enums import Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.model.instruments import Instrument
from exconn.sim import BinanceSpotSim
from exconn.transport.rest import RestClient
from exconn.venues.driver import driver_for
from exconn.venues.keys import Credentials
from tests.chaos.binance_rest_support import ANY, spot_client
from tests.integration.conftest import wait_for

ASK_S = 30.0
SYMBOL = "BTC/USDT"
VENUE_SYMBOL = "BTCUSDT"
ORDER = "POST /api/v3/order"


def _grid(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding) * step


class Rig:
    def __init__(
        self,
        system: ActorSystem,
        sim: BinanceSpotSim,
        client: RestClient,
        instrument: Instrument,
        sealed: SealedCredentials,
    ) -> None:
        self.system = system
        self.sim = sim
        self.client = client
        self.instrument = instrument
        self.sealed = sealed

    def ask(self, actor: Any, message: Any) -> Any:
        reply = self.system.ask(actor, message, ASK_S)
        assert reply is not None, f"no answer to {type(message).__name__}"
        return reply

    def start_query(self) -> Any:
        actor = self.system.createActor(OrderQuery)
        init = OrderQueryInit(
            exchange="binance",
            markets=("spot",),
            rest_urls={"spot": self.sim.rest_url},
            credentials=self.sealed,
            instruments=(self.instrument,),
            log_level="WARNING",
        )
        assert isinstance(self.ask(actor, init), OrderActorStarted)
        return actor

    def start_command(self, query: Any) -> Any:
        actor = self.system.createActor(OrderCommand)
        init = OrderCommandInit(
            exchange="binance",
            markets=("spot",),
            rest_urls={"spot": self.sim.rest_url},
            credentials=self.sealed,
            instruments=(self.instrument,),
            query=query,
            log_level="WARNING",
        )
        assert isinstance(self.ask(actor, init), OrderActorStarted)
        return actor

    def book_top(self) -> tuple[Decimal, Decimal]:
        top = self.client.get("/api/v3/ticker/bookTicker", {"symbol": VENUE_SYMBOL}, ANY)
        return Decimal(top["bidPrice"]), Decimal(top["askPrice"])

    def resting_buy(self, cid: str | None = None) -> PlaceOrder:
        """A limit buy 5 % under the bid (inside the price band, never filled while the
        market is paused)."""
        bid, _ = self.book_top()
        inst = self.instrument
        price = _grid(bid * Decimal("0.95"), inst.tick_size, ROUND_DOWN)
        return PlaceOrder(
            "binance", Market.SPOT, SYMBOL, OrderSide.BUY, OrderType.LIMIT,
            self.qty(price), price, client_order_id=cid,
        )  # fmt: skip

    def crossing_buy(self) -> PlaceOrder:
        """An IOC buy 1 % over the ask: it trades against the book at once."""
        _, ask = self.book_top()
        inst = self.instrument
        price = _grid(ask * Decimal("1.01"), inst.tick_size, ROUND_UP)
        return PlaceOrder(
            "binance", Market.SPOT, SYMBOL, OrderSide.BUY, OrderType.LIMIT,
            self.qty(price), price, time_in_force=TimeInForce.IOC,
        )  # fmt: skip

    def qty(self, price: Decimal) -> Decimal:
        inst = self.instrument
        qty = inst.min_qty
        if inst.min_notional is not None and qty * price < inst.min_notional * 2:
            steps = (inst.min_notional * 2 / price / inst.step_size).to_integral_value(ROUND_UP)
            qty = steps * inst.step_size
        return qty

    def sim_open_orders(self) -> list[dict[str, Any]]:
        return self.client.signed_request(
            "GET", "/api/v3/openOrders", {"symbol": VENUE_SYMBOL}, ANY, is_order=False
        )

    def sim_orders(self) -> list[dict[str, Any]]:
        return self.client.signed_request(
            "GET", "/api/v3/allOrders", {"symbol": VENUE_SYMBOL}, ANY, is_order=False
        )

    def sim_trades(self) -> list[dict[str, Any]]:
        return self.client.signed_request(
            "GET", "/api/v3/myTrades", {"symbol": VENUE_SYMBOL}, ANY, is_order=False
        )

    def requests(self) -> int:
        return int(self.sim.stats()["rest_requests"])


def _open_view(orders: Any) -> list[tuple[str | None, str, str, Decimal]]:
    return sorted(
        (o.client_order_id, o.exchange_order_id, str(o.status), o.filled_qty) for o in orders
    )


def _sim_open_view(rows: list[dict[str, Any]]) -> list[tuple[str | None, str, str, Decimal]]:
    status = {"NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED}
    return sorted(
        (r["clientOrderId"], str(r["orderId"]), str(status[r["status"]]), Decimal(r["executedQty"]))
        for r in rows
    )


def _status_is(rig: Rig, query: Any, cid: str, status: OrderStatus) -> OrderView | None:
    view = rig.ask(query, GetOrder(client_order_id=cid))
    assert isinstance(view, OrderView)
    return view if view.order is not None and view.order.status is status else None


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    sim = BinanceSpotSim(seed=5, accounts=1).start()
    system: ActorSystem | None = None
    client: RestClient | None = None
    try:
        sim.pause()  # a still market: resting orders stay resting
        keys = sim.api_keys(0)
        creds = Credentials(keys.hmac_key, secret=keys.hmac_secret)
        seal_key = new_seal_key()
        # The actor processes inherit the sealing key through their environment.
        monkeypatch.setenv(SEAL_KEY_ENV, seal_key.decode())
        monkeypatch.setenv("THESPIAN_BASE_IPADDR", "127.0.0.1")
        for key, value in TRANSMIT_SETTINGS.items():
            monkeypatch.setenv(key, value)
        client = spot_client(sim.rest_url, creds)
        catalog = driver_for("binance").load_catalog(Market.SPOT, client.get)
        instrument = next(i for i in catalog.instruments if i.symbol == SYMBOL)
        system = ActorSystem(
            SYSTEM_BASE,
            capabilities={"Admin Port": free_port()},
            logDefs=THESPIAN_LOG_DEFS,
            transientUnique=True,
        )
        yield Rig(system, sim, client, instrument, SealedCredentials.seal(creds, seal_key))
    finally:
        try:
            if system is not None:
                system.shutdown()
        finally:
            if client is not None:
                client.close()
            sim.stop()


def test_place_fill_cancel_and_the_read_model_matches_the_simulator(rig: Rig) -> None:
    query = rig.start_query()
    command = rig.start_command(query)

    placed = rig.ask(command, rig.resting_buy())
    assert isinstance(placed, OrderAccepted), placed
    assert placed.status is OrderStatus.NEW and placed.exchange_order_id
    cid = placed.client_order_id
    assert cid
    # OrderCommand tells the query actor before it answers, but Thespian orders messages per
    # sender only: wait (bounded) until the query actor has read it.
    want = _sim_open_view(rig.sim_open_orders())
    wait_for(lambda: _open_view(rig.ask(query, GetOpenOrders(SYMBOL)).orders) == want, "ack")

    crossed = rig.ask(command, rig.crossing_buy())
    assert isinstance(crossed, OrderAccepted), crossed
    assert crossed.status is OrderStatus.FILLED
    done = rig.ask(query, Reconcile())
    assert isinstance(done, ReconcileDone) and done.error is None, done
    fills = rig.ask(query, GetFills(SYMBOL))
    assert isinstance(fills, FillsView)
    trades = rig.sim_trades()
    assert trades, "the crossing order traded"
    assert sorted(f.trade_id for f in fills.fills) == sorted(str(t["id"]) for t in trades)
    assert {f.exchange_order_id for f in fills.fills} == {crossed.exchange_order_id}
    again = rig.ask(query, Reconcile())
    assert isinstance(again, ReconcileDone) and again.report.missed_fills == 0
    fills_again = rig.ask(query, GetFills(SYMBOL))
    assert len(fills_again.fills) == len(trades)  # each fill once

    cancelled = rig.ask(command, CancelOrder(
        exchange="binance", market=Market.SPOT, symbol=SYMBOL, client_order_id=cid
    ))  # fmt: skip
    assert isinstance(cancelled, OrderAccepted), cancelled
    assert cancelled.status is OrderStatus.CANCELED
    view = wait_for(lambda: _status_is(rig, query, cid, OrderStatus.CANCELED), "cancel")
    assert isinstance(view, OrderView)
    assert rig.sim_open_orders() == []
    assert rig.ask(query, GetOpenOrders(SYMBOL)).orders == ()


def test_an_invalid_order_is_refused_before_anything_is_sent(rig: Rig) -> None:
    command = rig.start_command(None)
    good = rig.resting_buy()
    before = rig.requests()
    off_tick = msgspec.structs.replace(good, price=good.price + rig.instrument.tick_size / 3)
    too_small = msgspec.structs.replace(good, qty=rig.instrument.step_size / 10)
    bad_id = msgspec.structs.replace(good, client_order_id="no spaces allowed")
    market_with_price = msgspec.structs.replace(good, type=OrderType.MARKET)
    unknown_symbol = msgspec.structs.replace(good, symbol="NOPE/USDT")
    for order in (off_tick, too_small, bad_id, market_with_price, unknown_symbol):
        reply = rig.ask(command, order)
        assert isinstance(reply, OrderRejected), (order, reply)
        assert reply.reason == "InvalidOrder" and reply.code is None, reply
    assert rig.requests() == before
    assert rig.sim_orders() == []


def test_an_unknown_outcome_is_resolved_by_query_and_never_sent_twice(rig: Rig) -> None:
    query = rig.start_query()
    command = rig.start_command(query)
    order = rig.resting_buy("eng-timeout-1")
    rig.sim.add_fault("timeout_after_accept", endpoint=ORDER, count=1, delay_s=0)
    # The engine's own actor would receive the resolution later; the test's ask inbox gets
    # it through listen() after the first answer.
    first = rig.ask(command, order)
    assert isinstance(first, OrderOutcomeUnknown), first
    assert first.client_order_id == "eng-timeout-1"
    resolution = rig.system.listen(ASK_S)
    assert isinstance(resolution, OrderAccepted), resolution
    assert resolution.client_order_id == "eng-timeout-1" and resolution.exchange_order_id
    rows = [r for r in rig.sim_orders() if r["clientOrderId"] == "eng-timeout-1"]
    assert len(rows) == 1 and rows[0]["status"] == "NEW"
    assert str(rows[0]["orderId"]) == resolution.exchange_order_id

    before = rig.requests()
    resend = rig.ask(command, order)
    assert isinstance(resend, OrderRejected) and resend.reason == "InvalidOrder", resend
    assert rig.requests() == before
    assert len(rig.sim_orders()) == 1
    view = wait_for(lambda: _status_is(rig, query, "eng-timeout-1", OrderStatus.NEW), "resolved")
    assert view.order.exchange_order_id == resolution.exchange_order_id
    info = rig.ask(command, GetOrderActorInfo())
    assert isinstance(info, OrderActorInfo) and info.unresolved == ()


def test_a_resend_while_the_outcome_is_unknown_is_refused(rig: Rig) -> None:
    command = rig.start_command(None)
    order = rig.resting_buy("eng-timeout-2")
    rig.sim.add_fault("timeout_after_accept", endpoint=ORDER, count=1, delay_s=0)
    first = rig.ask(command, order)
    assert isinstance(first, OrderOutcomeUnknown), first
    # The resolving query runs on a timer; this re-send reaches the actor first or second.
    resend = rig.ask(command, order)
    replies = [resend, rig.system.listen(ASK_S)]
    refused = [r for r in replies if isinstance(r, OrderRejected)]
    accepted = [r for r in replies if isinstance(r, OrderAccepted)]
    assert len(refused) == 1 and len(accepted) == 1, replies
    assert refused[0].reason in ("OutcomeUnknown", "InvalidOrder")
    assert len(rig.sim_orders()) == 1


def test_a_restarted_query_actor_reconciles_orders_and_fills_exactly_once(rig: Rig) -> None:
    query = rig.start_query()
    command = rig.start_command(query)
    resting = [rig.ask(command, rig.resting_buy()) for _ in range(2)]
    assert all(isinstance(r, OrderAccepted) for r in resting), resting
    crossed = rig.ask(command, rig.crossing_buy())
    assert isinstance(crossed, OrderAccepted), crossed

    info = rig.ask(query, GetOrderActorInfo())
    assert isinstance(info, OrderActorInfo)
    os.kill(info.pid, signal.SIGKILL)

    fresh = rig.start_query()  # reconciles on start
    rig.system.tell(command, SetQueryActor(fresh))
    open_orders = rig.ask(fresh, GetOpenOrders(SYMBOL))
    assert _open_view(open_orders.orders) == _sim_open_view(rig.sim_open_orders())
    assert len(open_orders.orders) == 2
    trades = rig.sim_trades()
    fills = rig.ask(fresh, GetFills(SYMBOL)).fills
    assert sorted(f.trade_id for f in fills) == sorted(str(t["id"]) for t in trades)
    again = rig.ask(fresh, Reconcile())
    assert again.error is None and again.report.missed_fills == 0
    assert again.report.orders_changed == 0
    assert len(rig.ask(fresh, GetFills(SYMBOL)).fills) == len(trades)
