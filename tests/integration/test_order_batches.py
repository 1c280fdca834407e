"""``PlaceOrders`` / ``CancelOrders`` through the real tree against the Bybit simulator: the
orders go in ``/v5/order/create-batch`` / ``cancel-batch`` requests of at most 10 (linear:
the batch budget of 10 orders a second, below the 20-item limit), each order gets its own
reply (accepted, refused by the venue, refused before sending), and a batch whose request
fails as a whole leaves every order in it unknown until a query resolves each one, with
exactly one order per client id at the venue."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

import exconn
from exconn.actors.order_messages import GetOrderActorInfo, OrderActorInfo
from exconn.messages import (
    CancelOrder,
    CancelOrders,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderReply,
    PlaceOrder,
    PlaceOrders,
)
from exconn.model.enums import Market
from exconn.model.instruments import Instrument
from exconn.sim import BybitSim
from tests.integration.conftest import wait_for
from tests.integration.test_order_tree import (
    ASK_S,
    _instrument,
    _order_actors_up,
    _resting_buy,
)
from tests.integration.test_user_streams import WAIT
from tests.sim.test_bybit_client import Rest as BybitRest

SYMBOL = "BTC/USDT:USDT"


def _start(sim: BybitSim) -> exconn.Exconn:
    return exconn.start(
        exconn.Config.for_sim(
            None,
            None,
            bybit=(sim.rest_url, sim.ws_url),
            bybit_keys=sim.api_keys()[0],
            bybit_markets=("linear",),
        )
    )


def _rest_requests(ex: exconn.Exconn) -> int:
    sup = wait_for(lambda: _order_actors_up(ex, "bybit"), "the order actors", WAIT)
    info = ex.system.ask(sup.order_command, GetOrderActorInfo(), ASK_S)
    assert isinstance(info, OrderActorInfo), info
    return info.rest_requests


def _replies(ex: exconn.Exconn, command: Any, count: int) -> dict[str, OrderReply]:
    """The ``count`` replies to ``command`` (the first through ask, the rest through listen),
    by client order id; each order answered once."""
    first = ex.ask(command, ASK_S)
    assert first is not None, "no answer"
    got = [first]
    for _ in range(count - 1):
        reply = ex.system.listen(ASK_S)
        assert reply is not None, f"{len(got)} of {count} replies"
        got.append(reply)
    by_id = {r.client_order_id: r for r in got}
    assert len(by_id) == count, got
    return by_id


def _rows(rest: BybitRest, cid: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in ("/v5/order/realtime", "/v5/order/history"):
        result = rest.ok("GET", path, category="linear", symbol="BTCUSDT", orderLinkId=cid)
        rows += [r for r in result["list"] if r["orderLinkId"] == cid]
    return list({r["orderId"]: r for r in rows}.values())


def _bid(sim: BybitSim) -> Decimal:
    sim.step(1)
    _, bids, _ = sim.book("linear", "BTCUSDT")
    return Decimal(str(bids[0][0]))


def _orders(inst: Instrument, bid: Decimal, prefix: str, n: int) -> list[PlaceOrder]:
    return [_resting_buy("bybit", inst, bid, f"{prefix}-{i:02d}") for i in range(n)]


def test_place_and_cancel_batches_with_per_order_replies(bybit_sim: BybitSim) -> None:
    inst = _instrument("bybit", Market.LINEAR, bybit_sim.rest_url, SYMBOL)
    ex = _start(bybit_sim)
    rest = BybitRest(bybit_sim)
    try:
        bid = _bid(bybit_sim)
        orders = _orders(inst, bid, "bt", 25)
        # The venue already holds bt-07 (placed by someone else): its item is refused.
        taken = orders[7]
        rest.ok(
            "POST", "/v5/order/create", category="linear", symbol="BTCUSDT", side="Buy",
            orderType="Limit", qty=str(taken.qty), price=str(taken.price),
            orderLinkId=taken.client_order_id,
        )  # fmt: skip
        # bt-11 breaks the tick size: refused before anything is sent.
        assert orders[11].price is not None
        orders[11] = msgspec.structs.replace(
            orders[11], price=orders[11].price + inst.tick_size / 2
        )
        before = _rest_requests(ex)

        replies = _replies(ex, PlaceOrders(tuple(orders)), 25)
        assert isinstance(replies["bt-07"], OrderRejected), replies["bt-07"]
        assert replies["bt-07"].code in (110072, 170141), replies["bt-07"]
        assert isinstance(replies["bt-11"], OrderRejected), replies["bt-11"]
        assert replies["bt-11"].reason == "InvalidOrder" and replies["bt-11"].code is None
        placed = {cid: r for cid, r in replies.items() if cid not in ("bt-07", "bt-11")}
        for r in placed.values():
            assert isinstance(r, OrderAccepted) and r.action == "place", r
        for cid, reply in placed.items():
            (row,) = _rows(rest, cid)
            assert row["orderId"] == reply.exchange_order_id
        assert len(_rows(rest, "bt-11")) == 0
        # 24 orders sent (bt-07 too) in three create-batch requests (10 + 10 + 4: the linear
        # batch budget is 10 orders a second), not 24 single ones.
        assert _rest_requests(ex) - before == 3

        before = _rest_requests(ex)
        cancels = [
            CancelOrder(exchange="bybit", market=Market.LINEAR, symbol=SYMBOL, client_order_id=cid)
            for cid in [*placed, "bt-missing"]
        ]
        cancelled = _replies(ex, CancelOrders(tuple(cancels)), len(cancels))
        assert isinstance(cancelled["bt-missing"], OrderRejected)
        assert cancelled["bt-missing"].reason == "OrderNotFound", cancelled["bt-missing"]
        for cid in placed:
            assert isinstance(cancelled[cid], OrderAccepted), cancelled[cid]
            assert cancelled[cid].action == "cancel"
            assert _rows(rest, cid)[0]["orderStatus"] == "Cancelled"
        assert _rest_requests(ex) - before == 3  # 24 cancels: 10 + 10 + 4
    finally:
        ex.shutdown()


def test_a_failed_batch_request_leaves_each_order_unknown_until_resolved(
    bybit_sim: BybitSim,
) -> None:
    """The venue executes the batch but the request fails (500): every order in it is
    unknown, each is resolved by query, and none is sent twice."""
    inst = _instrument("bybit", Market.LINEAR, bybit_sim.rest_url, SYMBOL)
    ex = _start(bybit_sim)
    rest = BybitRest(bybit_sim)
    try:
        bid = _bid(bybit_sim)
        _rest_requests(ex)  # the tree is up before the fault is armed
        bybit_sim.error_after_accept("POST /v5/order/create-batch", status=500, count=1)
        orders = _orders(inst, bid, "bu", 3)
        first = _replies(ex, PlaceOrders(tuple(orders)), 3)
        assert all(isinstance(r, OrderOutcomeUnknown) for r in first.values()), first
        resolved: dict[str, Any] = {}
        for _ in range(3):
            reply = ex.system.listen(ASK_S)
            assert reply is not None, f"{len(resolved)} of 3 resolutions"
            resolved[reply.client_order_id] = reply
        assert set(resolved) == {o.client_order_id for o in orders}
        for cid, reply in resolved.items():
            assert isinstance(reply, OrderAccepted), reply
            rows = _rows(rest, cid)
            assert len(rows) == 1 and rows[0]["orderId"] == reply.exchange_order_id
        # A re-send of a resolved order is refused without reaching the venue.
        again = ex.ask(PlaceOrders((orders[0],)), ASK_S)
        assert isinstance(again, OrderRejected) and again.reason == "InvalidOrder", again
        assert len(_rows(rest, orders[0].client_order_id or "")) == 1
    finally:
        ex.shutdown()
