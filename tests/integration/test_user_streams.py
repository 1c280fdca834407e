"""Account topics end to end: real actors (multiprocTCPBase) against the simulators on
127.0.0.1. An order placed directly at the simulator (the tests' own signed REST clients)
must reach a subscriber of ``orders.<ex>`` / ``fills.<ex>`` (and balances/positions where the
venue sends them) through the exchange's ``UserStreamConnection``; a refused key must reach
it as an ``AccountStreamError`` carrying an ``AuthError`` while the supervisor restarts the
stream; a dropped private socket must come back and carry later events.

Events the venue sent while the socket was down are not recovered here: that is issue 6's
REST reconciliation (``OrderQuery``)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import msgspec
from thespian.actors import Actor

import exconn
from exconn import errors
from exconn.actors.root import TreeStatus
from exconn.actors.supervisor import SupervisorStatus
from exconn.actors.user_stream import UserStreamStatus
from exconn.messages import (
    AccountStreamError,
    BalanceUpdate,
    EventBatch,
    Fill,
    GetStatus,
    OrderUpdate,
    PositionUpdate,
    SubscriptionError,
)
from exconn.model.enums import OrderStatus
from exconn.sim import BinanceSpotSim, BinanceUsdmSim, BybitSim
from tests.integration.conftest import wait_for
from tests.sim.spot_client import Rest as SpotRest
from tests.sim.test_bybit_client import Rest as BybitRest
from tests.sim.test_usdm_helpers import Rest as UsdmRest

WAIT = 30.0


# -- the engine side ------------------------------------------------------------------------------
class GetRecord(msgspec.Struct, frozen=True):
    pass


class Record(msgspec.Struct, frozen=True):
    events: list[Any]
    stream_errors: list[Any]  # AccountStreamError
    subscription_errors: list[str]
    batches: int


class AccountRecorder(Actor):
    """Keeps every account event, stream error and subscription error it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []
        self.stream_errors: list[Any] = []
        self.subscription_errors: list[str] = []
        self.batches = 0

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            self.batches += 1
            self.events.extend(message.events)
        elif isinstance(message, AccountStreamError):
            self.stream_errors.append(message)
        elif isinstance(message, SubscriptionError):
            self.subscription_errors.append(f"{message.topic}: {message.reason}")
        elif isinstance(message, GetRecord):
            self.send(
                sender,
                Record(
                    list(self.events),
                    list(self.stream_errors),
                    list(self.subscription_errors),
                    self.batches,
                ),
            )


def record(ex: exconn.Exconn, actor: Any) -> Record:
    reply = ex.system.ask(actor, GetRecord(), 10)
    assert isinstance(reply, Record), f"recorder did not answer: {reply!r}"
    return reply


def of(kind: type, events: list[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def user_streams(ex: exconn.Exconn, exchange: str) -> list[UserStreamStatus]:
    tree = ex.system.ask(ex.root, GetStatus(), 5)
    if not isinstance(tree, TreeStatus) or exchange not in tree.supervisors:
        return []
    sup = ex.system.ask(tree.supervisors[exchange], GetStatus(), 5)
    if not isinstance(sup, SupervisorStatus):
        return []
    out = []
    for address in sup.user_streams:
        status = ex.system.ask(address, GetStatus(), 5)
        if isinstance(status, UserStreamStatus):
            out.append(status)
    return out


def supervisor_restarts(ex: exconn.Exconn, exchange: str) -> int:
    tree = ex.system.ask(ex.root, GetStatus(), 5)
    assert isinstance(tree, TreeStatus)
    sup = ex.system.ask(tree.supervisors[exchange], GetStatus(), 5)
    return sup.restarts if isinstance(sup, SupervisorStatus) else 0


def all_subscribed(ex: exconn.Exconn, exchange: str, count: int = 1) -> bool:
    streams = user_streams(ex, exchange)
    return len(streams) == count and all(s.subscribed for s in streams)


def filled_order(client_id: str):  # type: ignore[no-untyped-def]
    def check(events: list[Any]) -> list[Any]:
        return [
            o
            for o in of(OrderUpdate, events)
            if o.client_order_id == client_id and o.status is OrderStatus.FILLED
        ]

    return check


def account_topics(exchange: str) -> tuple[str, ...]:
    return tuple(f"{k}.{exchange}" for k in ("orders", "fills", "balances", "positions"))


# -- Binance spot ---------------------------------------------------------------------------------
def test_binance_spot_account_events_reach_subscribers(spot_sim: BinanceSpotSim) -> None:
    keys = spot_sim.api_keys(0)
    config = exconn.Config.for_sim(
        spot_sim.rest_url, spot_sim.ws_url, binance_keys=(keys.hmac_key, keys.hmac_secret)
    )
    assert keys.hmac_secret not in repr(config)
    ex = exconn.start(config)
    rest = SpotRest(spot_sim, keys)
    try:
        rec = ex.create_actor(AccountRecorder)
        ex.subscribe(rec, "orders.binance", "fills.binance", "balances.binance")
        wait_for(lambda: all_subscribed(ex, "binance"), "the spot user stream to subscribe")
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
            newClientOrderId="it-spot-1",
        )
        assert placed["status"] == "FILLED"
        check = filled_order("it-spot-1")
        events = wait_for(
            lambda: (ev := record(ex, rec).events) and check(ev) and of(BalanceUpdate, ev) and ev,
            "the spot order's FILLED update and balances",
            WAIT,
        )
        (order,) = check(events)
        assert order.exchange_order_id == str(placed["orderId"])
        assert order.symbol == "BTC/USDT" and order.filled_qty == qty == order.qty
        fills = [f for f in of(Fill, events) if f.exchange_order_id == str(placed["orderId"])]
        assert sum((f.qty for f in fills), Decimal(0)) == qty
        assert all(f.price == price for f in fills)
        assert {b.asset for b in of(BalanceUpdate, events)} >= {"BTC", "USDT"}
        assert record(ex, rec).stream_errors == []
    finally:
        rest.close()
        ex.shutdown()


def test_binance_wrong_key_gives_auth_error_and_supervised_restarts(
    spot_sim: BinanceSpotSim,
) -> None:
    ex = exconn.start(
        exconn.Config.for_sim(
            spot_sim.rest_url, spot_sim.ws_url, binance_keys=("not-a-key", "not-a-secret")
        )
    )
    try:
        rec = ex.create_actor(AccountRecorder)
        ex.subscribe(rec, "orders.binance", "fills.binance")
        got = wait_for(
            lambda: len(record(ex, rec).stream_errors) >= 2 and record(ex, rec).stream_errors,
            "two AuthErrors (the first stream and its supervised restart)",
            WAIT,
        )
        assert all(isinstance(e.error, errors.AuthError) for e in got)
        assert got[0].exchange == "binance" and got[0].market == "spot"
        assert "not-a-secret" not in repr(got[0].error) and "not-a-secret" not in str(got[0].error)
        assert supervisor_restarts(ex, "binance") >= 1
        assert record(ex, rec).events == []
    finally:
        ex.shutdown()


def test_account_topics_without_credentials_are_refused(spot_sim: BinanceSpotSim) -> None:
    ex = exconn.start(exconn.Config.for_sim(spot_sim.rest_url, spot_sim.ws_url))
    try:
        rec = ex.create_actor(AccountRecorder)
        ex.subscribe(rec, "orders.binance", "fills.binance.spot.BTC/USDT", "orders.bybit")
        errs = wait_for(
            lambda: (
                len(record(ex, rec).subscription_errors) >= 3
                and record(ex, rec).subscription_errors
            ),
            "three subscription errors",
            WAIT,
        )
        text = "\n".join(errs)
        assert "orders.binance: binance has no credentials" in text
        assert "account topics are kind.exchange" in text
        assert "orders.bybit: exchange 'bybit' is not configured" in text
        assert user_streams(ex, "binance") == []
    finally:
        ex.shutdown()


# -- Binance USD-M --------------------------------------------------------------------------------
def test_binance_usdm_listen_key_stream_delivers_orders_fills_positions(
    usdm_sim: BinanceUsdmSim,
) -> None:
    key, secret = usdm_sim.api_keys()[0]
    ex = exconn.start(
        exconn.Config.for_sim(
            None, None, linear=(usdm_sim.rest_url, usdm_sim.ws_url), binance_keys=(key, secret)
        )
    )
    rest = UsdmRest(usdm_sim, key, secret, lambda: time.time_ns() // 1_000_000)
    try:
        rec = ex.create_actor(AccountRecorder)
        ex.subscribe(rec, *account_topics("binance"))
        wait_for(lambda: all_subscribed(ex, "binance"), "the USD-M user stream to connect")
        top = rest.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT").json()
        price, qty = Decimal(top["askPrice"]), Decimal(top["askQty"])
        placed = rest.order(
            side="BUY",
            type="LIMIT",
            timeInForce="IOC",
            quantity=str(qty),
            price=str(price),
            newClientOrderId="it-usdm-1",
        ).json()
        assert placed["status"] == "FILLED", placed
        check = filled_order("it-usdm-1")
        events = wait_for(
            lambda: (ev := record(ex, rec).events) and check(ev) and of(PositionUpdate, ev) and ev,
            "the USD-M order's FILLED update and position",
            WAIT,
        )
        (order,) = check(events)
        assert order.symbol == "BTC/USDT:USDT" and order.filled_qty == qty
        assert order.avg_price == price
        fills = of(Fill, events)
        assert sum((f.qty for f in fills), Decimal(0)) == qty
        # A position is state, not an event to count: the stream's update and the start-up
        # reconcile's may both arrive; the latest is what holds.
        positions = [p for p in of(PositionUpdate, events) if p.symbol == "BTC/USDT:USDT"]
        assert positions, events
        position = positions[-1]
        assert position.qty == qty and position.entry_price == price
        assert of(BalanceUpdate, events)[0].asset == "USDT"

        # listenKeyExpired: the stream gets a new key and a new socket; later events arrive.
        live_key = rest.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
        assert usdm_sim.expire_listen_key(live_key)
        wait_for(
            lambda: (s := user_streams(ex, "binance")) and s[0].key_renewals >= 1,
            "a new listenKey after listenKeyExpired",
        )
        wait_for(lambda: all_subscribed(ex, "binance"), "the USD-M stream on its new key")
        top = rest.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT").json()
        placed = rest.order(
            side="SELL",
            type="LIMIT",
            timeInForce="IOC",
            quantity=str(qty),
            price=top["bidPrice"],
            newClientOrderId="it-usdm-2",
        ).json()
        assert placed["status"] == "FILLED", placed
        check2 = filled_order("it-usdm-2")
        events = wait_for(
            lambda: (ev := record(ex, rec).events) and check2(ev) and ev,
            "the order placed after the new listenKey",
            WAIT,
        )
        assert check2(events)[0].filled_qty == qty

        # Shutdown ends the key at the venue instead of leaving it live for its last hour.
        current_key = rest.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
        assert usdm_sim.listen_key_expiry(current_key) is not None
        ex.shutdown()
        assert usdm_sim.listen_key_expiry(current_key) is None
    finally:
        rest.close()
        ex.shutdown()


# -- Bybit ----------------------------------------------------------------------------------------
def _bybit_buy(sim: BybitSim, rest: BybitRest, client_id: str) -> tuple[dict[str, Any], Any, Any]:
    sim.step(1)  # publish the book the order takes from
    _, _, asks = sim.book("linear", "BTCUSDT")
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
        orderLinkId=client_id,
    )
    return created, price, qty


def test_bybit_private_stream_events_auth_rejection_and_reconnect(bybit_sim: BybitSim) -> None:
    ex = exconn.start(
        exconn.Config.for_sim(
            None,
            None,
            bybit=(bybit_sim.rest_url, bybit_sim.ws_url),
            bybit_keys=bybit_sim.api_keys()[0],
        )
    )
    rest = BybitRest(bybit_sim)
    try:
        rec = ex.create_actor(AccountRecorder)
        ex.subscribe(rec, *account_topics("bybit"))
        # One private stream for both categories.
        wait_for(lambda: all_subscribed(ex, "bybit", 1), "the Bybit private stream")

        created, price, qty = _bybit_buy(bybit_sim, rest, "it-bybit-1")
        check = filled_order("it-bybit-1")

        def complete(events: list[Any]) -> bool:
            return bool(
                check(events)
                and of(Fill, events)
                and of(PositionUpdate, events)
                and of(BalanceUpdate, events)
            )

        events = wait_for(
            lambda: (ev := record(ex, rec).events) and complete(ev) and ev,
            "the Bybit order's FILLED update, fill, position and wallet",
            WAIT,
        )
        (order,) = check(events)
        assert order.exchange_order_id == created["orderId"]
        assert (order.symbol, order.filled_qty, order.avg_price) == ("BTC/USDT:USDT", qty, price)
        fills = [f for f in of(Fill, events) if f.exchange_order_id == created["orderId"]]
        assert sum((f.qty for f in fills), Decimal(0)) == qty
        assert of(PositionUpdate, events)[-1].qty == qty

        # The next auth is refused (reject_auth), and every socket dropped: the stream
        # reconnects, gets an AuthError to its subscribers, exits, and its supervisor restarts
        # it; the restarted one authenticates.
        bybit_sim.reject_auth(count=1)
        bybit_sim.drop_connection()  # the only socket: the private one
        stream_errors = wait_for(
            lambda: record(ex, rec).stream_errors, "the AuthError after reject_auth", WAIT
        )
        assert isinstance(stream_errors[0].error, errors.AuthError)
        assert stream_errors[0].error.code == 10003
        wait_for(lambda: supervisor_restarts(ex, "bybit") >= 1, "a supervised restart")
        wait_for(lambda: all_subscribed(ex, "bybit", 1), "the restarted private stream")

        # A plain drop: the same actor reconnects and later events arrive.
        bybit_sim.drop_connection()  # the only socket: the private one
        wait_for(
            lambda: (s := user_streams(ex, "bybit")) and s[0].reconnects >= 1 and s[0].subscribed,
            "the private stream to reconnect after a drop",
        )
        created2, _, qty2 = _bybit_buy(bybit_sim, rest, "it-bybit-2")
        check2 = filled_order("it-bybit-2")
        events = wait_for(
            lambda: (ev := record(ex, rec).events) and check2(ev) and ev,
            "the order placed after the reconnect",
            WAIT,
        )
        assert check2(events)[0].exchange_order_id == created2["orderId"]
        assert check2(events)[0].filled_qty == qty2
        assert len(record(ex, rec).stream_errors) == 1
    finally:
        rest.http.close()
        ex.shutdown()
