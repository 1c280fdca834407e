"""Private-stream faults through the real tree (simulators on loopback): a stalled socket is
given up by the heartbeat watchdog and every fill made meanwhile reaches the account
subscriber exactly once; a venue clock far from ours does not stop the private auth.

A stall keeps the TCP connection open and sends nothing, pongs included (as a stuck path
would): only the heartbeat can tell it from an account with nothing to report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import exconn
from exconn.config import WsSettings
from exconn.messages import OrderAccepted
from exconn.model.enums import Market
from exconn.sim import BinanceSpotSim, BinanceUsdmSim, BybitSim
from exconn.sim.fault_registry import FaultKind
from tests.integration.conftest import wait_for
from tests.integration.test_order_tree import (
    _assert_once,
    _binance,
    _bybit,
    _crossing_buy,
    _filled,
    _fills_of,
    _instrument,
    _order_actors_up,
    _reconcile_again,
)
from tests.integration.test_user_streams import (
    WAIT,
    AccountRecorder,
    account_topics,
    all_subscribed,
    record,
    user_streams,
)
from tests.sim.spot_client import Rest as SpotRest
from tests.sim.test_bybit_client import Rest as BybitRest
from tests.sim.test_usdm_helpers import Rest as UsdmRest

# A heartbeat every second, a socket silent for 4 s is stalled: the test's waits are events
# (the stream's own counters), these only make it finish in seconds instead of a minute.
FAST_HEARTBEAT = WsSettings(private_heartbeat_s=1.0, private_silence_s=4.0)
# Heartbeats answered before the stall: more than fit in the silence timeout, so a quiet
# stream that answers them is shown to stay up on the answers alone.
QUIET_HEARTBEATS = int(FAST_HEARTBEAT.private_silence_s / FAST_HEARTBEAT.private_heartbeat_s) + 2
# Far longer than the test: only the watchdog can end it for the client.
STALL_MS = 600_000
# Beyond Bybit's auth expiry slack (5 s) and Binance's recvWindow (5 s) / 1 s lead.
SKEW_MS = 10_000


def _only_connection(connections: list[dict[str, Any]]) -> int:
    """The private socket: account topics only, so it is the simulator's only one."""
    assert len(connections) == 1, connections
    return int(connections[0]["id"])


def _fills_while_stalled(
    ex: exconn.Exconn,
    exchange: str,
    stall: Callable[[], int],
    still_open: Callable[[int], bool],
    trade: Callable[[int], tuple[str, Decimal]],
    pongs: Callable[[], int],
) -> None:
    """A quiet stream that answers its heartbeats stays up; stalled, it is replaced and the
    fills made meanwhile reach the subscriber exactly once. ``pongs``: heartbeats the
    simulator answered."""
    rec = ex.create_actor(AccountRecorder)
    ex.subscribe(rec, *account_topics(exchange))
    wait_for(lambda: all_subscribed(ex, exchange), f"the {exchange} private stream", WAIT)
    wait_for(lambda: _order_actors_up(ex, exchange), "the order actors", WAIT)
    before = user_streams(ex, exchange)[0]
    answered = pongs()
    wait_for(
        lambda: pongs() >= answered + QUIET_HEARTBEATS,
        "heartbeats answered for longer than the silence timeout",
        WAIT,
    )
    quiet = user_streams(ex, exchange)[0]
    assert (quiet.stalls, quiet.reconnects) == (before.stalls, before.reconnects)
    assert quiet.subscribed

    stalled = stall()
    qty_of = dict(trade(i) for i in range(2))
    if not still_open(stalled):
        pytest.skip("the stalled socket was given up before the fills were made: not a miss")
    wait_for(
        lambda: (
            (s := user_streams(ex, exchange))
            and s[0].stalls > before.stalls
            and s[0].reconnects > before.reconnects
            and s[0].subscribed
        ),
        "the stalled stream to be given up and opened again",
        WAIT,
    )
    wait_for(
        lambda: _filled(qty_of)(record(ex, rec).events),
        "the fills made while the socket was stalled",
        WAIT,
    )
    _reconcile_again(ex, exchange)
    _assert_once(_fills_of(record(ex, rec).events, set(qty_of)), qty_of)
    assert record(ex, rec).stream_errors == []


# -- stall ----------------------------------------------------------------------------------------
def test_binance_spot_stalled_private_socket_is_replaced_and_fills_arrive_once(
    spot_sim: BinanceSpotSim,
) -> None:
    ex = _binance(spot_sim, FAST_HEARTBEAT)
    rest = SpotRest(spot_sim, spot_sim.api_keys(0))

    def stall() -> int:
        conn = _only_connection(spot_sim.connections())
        spot_sim.add_fault(FaultKind.STALL, connection=conn, count=None, duration_ms=STALL_MS)
        return conn

    def trade(i: int) -> tuple[str, Decimal]:
        _, _, asks = spot_sim.book("BTCUSDT")
        price, qty = asks[0]
        placed = rest.ok(
            "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
            timeInForce="IOC", quantity=str(qty), price=str(price),
            newClientOrderId=f"stall-{i}",
        )  # fmt: skip
        assert placed["status"] == "FILLED"
        return str(placed["orderId"]), Decimal(str(qty))

    def still_open(conn: int) -> bool:
        return any(c["id"] == conn for c in spot_sim.connections())

    try:
        _fills_while_stalled(
            ex, "binance", stall, still_open, trade, lambda: spot_sim.stats().get("pongs_sent", 0)
        )
    finally:
        rest.close()
        ex.shutdown()


def test_bybit_stalled_private_socket_is_replaced_and_fills_arrive_once(
    bybit_sim: BybitSim,
) -> None:
    ex = _bybit(bybit_sim, FAST_HEARTBEAT)
    rest = BybitRest(bybit_sim)

    def stall() -> int:
        conn = _only_connection(bybit_sim.connections())
        bybit_sim.stall(connection=conn, duration_ms=STALL_MS)
        return conn

    def trade(i: int) -> tuple[str, Decimal]:
        bybit_sim.step(1)
        _, _, asks = bybit_sim.book("linear", "BTCUSDT")
        price, qty = asks[0]
        created = rest.ok(
            "POST", "/v5/order/create", category="linear", symbol="BTCUSDT", side="Buy",
            orderType="Limit", timeInForce="IOC", qty=str(qty), price=str(price),
            orderLinkId=f"stall-{i}",
        )  # fmt: skip
        return str(created["orderId"]), Decimal(str(qty))

    def still_open(conn: int) -> bool:
        return any(c["id"] == conn for c in bybit_sim.connections())

    try:
        _fills_while_stalled(
            ex, "bybit", stall, still_open, trade, lambda: bybit_sim.stats().get("pongs_sent", 0)
        )
    finally:
        rest.http.close()
        ex.shutdown()


def test_binance_usdm_stalled_private_socket_is_replaced_and_fills_arrive_once(
    usdm_sim: BinanceUsdmSim,
) -> None:
    key, secret = usdm_sim.api_keys()[0]
    ex = exconn.start(
        exconn.Config.for_sim(
            None,
            None,
            linear=(usdm_sim.rest_url, usdm_sim.ws_url),
            binance_keys=(key, secret),
            ws=FAST_HEARTBEAT,
        )
    )
    rest = UsdmRest(usdm_sim, key, secret, lambda: time.time_ns() // 1_000_000)

    def stall() -> int:
        conn = _only_connection(usdm_sim.connections())
        usdm_sim.stall_connection(conn, STALL_MS)
        return conn

    def trade(i: int) -> tuple[str, Decimal]:
        top = rest.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT").json()
        qty = Decimal(top["askQty"])
        placed = rest.order(
            side="BUY", type="LIMIT", timeInForce="IOC", quantity=str(qty),
            price=top["askPrice"], newClientOrderId=f"stall-{i}",
        ).json()  # fmt: skip
        assert placed["status"] == "FILLED", placed
        return str(placed["orderId"]), qty

    def still_open(conn: int) -> bool:
        return any(c["id"] == conn for c in usdm_sim.connections())

    try:
        _fills_while_stalled(
            ex, "binance", stall, still_open, trade, lambda: usdm_sim.stats().get("pongs_sent", 0)
        )
    finally:
        rest.close()
        ex.shutdown()


# -- clock skew -----------------------------------------------------------------------------------
def _authenticates_and_delivers(
    ex: exconn.Exconn, exchange: str, inst: Any, ask: tuple[Any, Any]
) -> None:
    """The private stream subscribes at the first try despite the skew, and a fill made
    afterwards reaches the subscriber."""
    rec = ex.create_actor(AccountRecorder)
    ex.subscribe(rec, *account_topics(exchange))
    wait_for(lambda: all_subscribed(ex, exchange), f"the {exchange} private stream", WAIT)
    wait_for(lambda: _order_actors_up(ex, exchange), "the order actors", WAIT)
    placed = ex.ask(_crossing_buy(exchange, inst, ask, f"skew-{exchange}"), WAIT)
    assert isinstance(placed, OrderAccepted), placed
    qty_of = {placed.exchange_order_id: Decimal(str(ask[1]))}
    wait_for(lambda: _filled(qty_of)(record(ex, rec).events), "the order's fill", WAIT)
    (stream,) = user_streams(ex, exchange)
    assert stream.reconnects == 0, "the auth was refused at least once"
    assert record(ex, rec).stream_errors == []


@pytest.mark.parametrize("skew_ms", [SKEW_MS, -SKEW_MS])
def test_binance_spot_private_auth_signs_with_the_venue_clock(
    spot_sim: BinanceSpotSim,
    skew_ms: int,
) -> None:
    spot_sim.add_fault(FaultKind.CLOCK_SKEW, count=None, duration_ms=STALL_MS, skew_ms=skew_ms)
    inst = _instrument("binance", Market.SPOT, spot_sim.rest_url, "BTC/USDT")
    ex = _binance(spot_sim)
    try:
        _, _, asks = spot_sim.book("BTCUSDT")
        _authenticates_and_delivers(ex, "binance", inst, asks[0])
    finally:
        ex.shutdown()


def test_bybit_private_auth_signs_with_the_venue_clock(bybit_sim: BybitSim) -> None:
    bybit_sim.clock_skew(SKEW_MS, duration_ms=STALL_MS)  # our expires would be past already
    inst = _instrument("bybit", Market.LINEAR, bybit_sim.rest_url, "BTC/USDT:USDT")
    ex = _bybit(bybit_sim)
    try:
        bybit_sim.step(1)
        _, _, asks = bybit_sim.book("linear", "BTCUSDT")
        _authenticates_and_delivers(ex, "bybit", inst, asks[0])
    finally:
        ex.shutdown()
