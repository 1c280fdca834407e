"""A rate-limit answer on the order WebSocket reaches the REST budget it shares, through the
real tree against the simulators (``order_entry="ws"``).

What is proven: a Binance WS API 429 (``retryAfter`` in epoch ms) stops the host's REST
traffic: the next REST order request (cancel-all has no WebSocket form) is refused without
being sent, and the resting order it would have cancelled is still open; a Bybit ``/v5/trade``
10006 stops that endpoint's budget until its reset (the next placement is not sent, over
either path) while another endpoint (cancel) goes on."""

from __future__ import annotations

from exconn.messages import CancelAll, CancelOrder, OrderAccepted, OrderRejected
from exconn.model.enums import Market
from exconn.sim import BinanceSpotSim, BybitSim
from tests.integration.test_order_tree import _instrument, _resting_buy
from tests.integration.test_ws_order_entry import (
    _ask,
    _bid,
    _bid_bybit,
    _binance,
    _bybit,
    _bybit_rows,
    _command_info,
    _spot_rows,
)
from tests.sim.spot_client import Rest as SpotRest
from tests.sim.test_bybit_client import Rest as BybitRest

# Longer than the REST client waits for a stopped budget (30 s): refused at once, not waited.
STOP_S = 60


def test_binance_a_ws_api_429_stops_the_rest_traffic_of_the_host(spot_sim: BinanceSpotSim) -> None:
    inst = _instrument("binance", Market.SPOT, spot_sim.rest_url, "BTC/USDT")
    ex = _binance(spot_sim)
    rest = SpotRest(spot_sim, spot_sim.api_keys(0))
    try:
        resting = _ask(ex, _resting_buy("binance", inst, _bid(spot_sim), "lim-bn-1"))
        assert isinstance(resting, OrderAccepted), resting
        spot_sim.add_fault("http_429", endpoint="order.place", count=1, retry_after=STOP_S)

        refused = _ask(ex, _resting_buy("binance", inst, _bid(spot_sim), "lim-bn-2"))
        # The order's own reply: refused by the venue, nothing placed.
        assert isinstance(refused, OrderRejected), refused
        assert refused.reason == "RateLimited" and refused.code == -1003, refused
        assert _spot_rows(rest, "lim-bn-2") == []

        # Cancel-all goes over REST (no WebSocket form): refused before it is sent.
        stopped = _ask(ex, CancelAll(exchange="binance", market=Market.SPOT, symbol="BTC/USDT"))
        assert isinstance(stopped, OrderRejected), stopped
        assert stopped.reason == "RateLimited" and "not sent" in stopped.message, stopped
        (row,) = _spot_rows(rest, "lim-bn-1")
        assert row["status"] == "NEW"  # not cancelled: the request never reached the venue
    finally:
        rest.close()
        ex.shutdown()


def test_bybit_a_v5_trade_10006_stops_that_endpoint_until_its_reset(bybit_sim: BybitSim) -> None:
    inst = _instrument("bybit", Market.LINEAR, bybit_sim.rest_url, "BTC/USDT:USDT")
    ex = _bybit(bybit_sim)
    rest = BybitRest(bybit_sim)
    try:
        bid = _bid_bybit(bybit_sim)
        resting = _ask(ex, _resting_buy("bybit", inst, bid, "lim-bb-1"))
        assert isinstance(resting, OrderAccepted), resting
        bybit_sim.add_fault("http_429", endpoint="order.create", count=1, retry_after=STOP_S)

        refused = _ask(ex, _resting_buy("bybit", inst, bid, "lim-bb-2"))
        assert isinstance(refused, OrderRejected), refused
        assert refused.reason == "RateLimited" and refused.code == 10006, refused

        # The create budget is stopped until the venue's reset: the next one is not sent.
        stopped = _ask(ex, _resting_buy("bybit", inst, bid, "lim-bb-3"))
        assert isinstance(stopped, OrderRejected), stopped
        assert stopped.reason == "RateLimited" and "not sent" in stopped.message, stopped
        assert _bybit_rows(rest, "lim-bb-2") == [] and _bybit_rows(rest, "lim-bb-3") == []

        # Another endpoint's budget is not stopped.
        cancelled = _ask(
            ex,
            CancelOrder(
                exchange="bybit", market=Market.LINEAR, symbol="BTC/USDT:USDT",
                client_order_id="lim-bb-1",
            ),
        )  # fmt: skip
        assert isinstance(cancelled, OrderAccepted), cancelled
        assert _bybit_rows(rest, "lim-bb-1")[0]["orderStatus"] == "Cancelled"
        assert _command_info(ex, "bybit").rest_requests == 0
    finally:
        ex.shutdown()
