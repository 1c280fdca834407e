"""Order lifecycle over REST with the user data stream (WS API subscription), balances."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from exconn.sim import BinanceSpotSim
from tests.sim.conftest import SimFactory
from tests.sim.spot_client import Rest, WsApi

BTC = "BTCUSDT"


@pytest.fixture
def market(make_sim: SimFactory) -> BinanceSpotSim:
    sim = make_sim(seed=3, depth_interval_ms=20)
    sim.pause()
    return sim


@pytest.fixture
def rest(market: BinanceSpotSim) -> Iterator[Rest]:
    client = Rest(market, market.api_keys(0))
    yield client
    client.close()


@pytest.fixture
def stream(market: BinanceSpotSim) -> Iterator[WsApi]:
    ws = WsApi(market)
    keys = market.api_keys(0)
    reply = ws.request("userDataStream.subscribe.signature", ws.signed_params(keys, "hmac"))
    assert reply["status"] == 200 and reply["result"] == {"subscriptionId": 0}
    yield ws
    ws.close()


def open_gap(sim: BinanceSpotSim, taker: Rest) -> Decimal:
    """Sweep the best ask with an IOC buy; the old ask price is then inside the spread."""
    _, _, asks = sim.book(BTC)
    price, qty = asks[0]
    body = taker.order(
        symbol=BTC, side="BUY", type="LIMIT", timeInForce="IOC", quantity=qty, price=price
    ).json()
    assert body["status"] == "FILLED", body
    _, bids, asks = sim.book(BTC)
    assert bids[0][0] < price < asks[0][0]
    return price


def reports(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["event"] for e in events if e["event"]["e"] == "executionReport"]


def test_partial_then_full_fill_between_two_accounts(
    market: BinanceSpotSim, rest: Rest, stream: WsApi
) -> None:
    maker_keys = market.api_keys(0)
    taker = Rest(market, market.api_keys(1))
    try:
        price = open_gap(market, taker)
        before = market.balances(maker_keys)
        placed = rest.order(
            symbol=BTC,
            side="SELL",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01000",
            price=price,
            newClientOrderId="maker-1",
        )
        assert placed.status_code == 200
        order = placed.json()
        assert order["status"] == "NEW" and order["fills"] == []
        assert (
            "X-MBX-ORDER-COUNT-10S" in placed.headers and "X-MBX-ORDER-COUNT-1D" in placed.headers
        )
        assert market.balances(maker_keys)["BTC"][1] == Decimal("0.01")  # locked
        first = taker.order(
            symbol=BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.00400", price=price
        ).json()
        assert first["status"] == "FILLED" and first["fills"][0]["price"] == f"{price:.8f}"
        query = rest.ok("GET", "/api/v3/order", symbol=BTC, origClientOrderId="maker-1")
        assert query["status"] == "PARTIALLY_FILLED" and query["executedQty"] == "0.00400000"
        taker.order(
            symbol=BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.00600", price=price
        )
        events = stream.events_until(lambda e: e.get("X") == "FILLED")
        seq = [(r["x"], r["X"]) for r in reports(events)]
        assert seq == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"), ("TRADE", "FILLED")]
        final = reports(events)[-1]
        query = rest.ok("GET", "/api/v3/order", symbol=BTC, orderId=order["orderId"])
        assert query["status"] == "FILLED" and query["executedQty"] == final["z"]
        assert query["cummulativeQuoteQty"] == final["Z"]
        after = market.balances(maker_keys)
        proceeds = price * Decimal("0.01")
        fee = proceeds * Decimal("0.001")
        assert after["BTC"][0] == before["BTC"][0] - Decimal("0.01") and after["BTC"][1] == 0
        assert after["USDT"][0] == before["USDT"][0] + proceeds - fee
        positions = [e["event"] for e in events if e["event"]["e"] == "outboundAccountPosition"]
        assert positions and {b["a"] for b in positions[-1]["B"]} == {"BTC", "USDT"}
        trades = rest.ok("GET", "/api/v3/myTrades", symbol=BTC, orderId=order["orderId"])
        assert [t["qty"] for t in trades] == ["0.00400000", "0.00600000"]
        assert all(t["isMaker"] and not t["isBuyer"] for t in trades)
    finally:
        taker.close()


def test_cancel_and_open_orders(market: BinanceSpotSim, rest: Rest, stream: WsApi) -> None:
    _, bids, _ = market.book(BTC)
    low = bids[-1][0] - Decimal(100)
    ids = [
        rest.order(
            symbol=BTC,
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price=low,
            newOrderRespType="ACK",
        ).json()["orderId"]
        for _ in range(3)
    ]
    opened = rest.ok("GET", "/api/v3/openOrders", symbol=BTC)
    assert [o["orderId"] for o in opened] == ids
    canceled = rest.ok(
        "DELETE", "/api/v3/order", symbol=BTC, orderId=ids[0], newClientOrderId="my-cancel"
    )
    assert canceled["status"] == "CANCELED" and canceled["clientOrderId"] == "my-cancel"
    again = rest.call("DELETE", "/api/v3/order", symbol=BTC, orderId=ids[0])
    assert again.status_code == 400 and again.json()["code"] == -2011
    rest_all = rest.ok("DELETE", "/api/v3/openOrders", symbol=BTC)
    assert [o["orderId"] for o in rest_all] == ids[1:]
    assert rest.ok("GET", "/api/v3/openOrders", symbol=BTC) == []
    events = stream.events_until(lambda e: e.get("x") == "CANCELED" and e["i"] == ids[2])
    cancel_report = next(r for r in reports(events) if r["i"] == ids[0] and r["x"] == "CANCELED")
    assert cancel_report["c"] == "my-cancel" and cancel_report["C"] != ""
    usdt = market.balances(market.api_keys(0))["USDT"]
    assert usdt[1] == 0, "cancels release the locked quote"


def test_rejections(market: BinanceSpotSim, rest: Rest) -> None:
    _, bids, asks = market.book(BTC)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"price": "60000.000000001"}, -1111, "too much precision"),
        ({"price": "60000.001"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"quantity": "0.000015"}, -1013, "Filter failure: LOT_SIZE"),
        ({"price": "6e4"}, -1100, "Illegal characters"),
        ({"price": "1000001"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"quantity": "9001"}, -1013, "Filter failure: LOT_SIZE"),
        ({"quantity": "0.00001", "price": "100"}, -1013, "Filter failure: NOTIONAL"),
        (
            {"quantity": "50", "price": str(bids[0][0])},
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        ({"side": "HOLD"}, -1117, "Invalid side."),
        ({"timeInForce": ""}, -1102, "timeInForce"),
    ]
    base = {
        "symbol": BTC,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": str(bids[0][0]),
    }
    for change, code, text in cases:
        response = rest.order(**(base | change))
        assert response.status_code == 400, change
        body = response.json()
        assert body["code"] == code and text in body["msg"], (change, body)
        assert "X-MBX-ORDER-COUNT-10S" not in response.headers
    maker = rest.order(
        symbol=BTC, side="BUY", type="LIMIT_MAKER", quantity="0.001", price=asks[0][0]
    )
    assert maker.json() == {"code": -2010, "msg": "Order would immediately match and take."}
    assert rest.ok("GET", "/api/v3/openOrders", symbol=BTC) == []


def test_ioc_fok_market_and_expiry(market: BinanceSpotSim, rest: Rest) -> None:
    _, _, asks = market.book(BTC)
    best_qty = asks[0][1]
    fok = rest.order(
        symbol=BTC,
        side="BUY",
        type="LIMIT",
        timeInForce="FOK",
        quantity=best_qty + Decimal("0.00001"),
        price=asks[0][0],
    ).json()
    assert fok["status"] == "EXPIRED" and fok["executedQty"] == "0.00000000"
    ioc = rest.order(
        symbol=BTC,
        side="BUY",
        type="LIMIT",
        timeInForce="IOC",
        quantity=best_qty + Decimal("0.00001"),
        price=asks[0][0],
    ).json()
    assert ioc["status"] == "EXPIRED" and Decimal(ioc["executedQty"]) == best_qty
    market_buy = rest.order(symbol=BTC, side="BUY", type="MARKET", quoteOrderQty="100").json()
    assert market_buy["status"] == "FILLED" and market_buy["type"] == "MARKET"
    assert Decimal(market_buy["cummulativeQuoteQty"]) <= 100
    result = rest.order(
        symbol=BTC, side="SELL", type="MARKET", quantity="0.001", newOrderRespType="RESULT"
    ).json()
    assert result["status"] == "FILLED" and "fills" not in result


def test_cancel_replace_and_amend(market: BinanceSpotSim, rest: Rest) -> None:
    _, bids, _ = market.book(BTC)
    low = bids[-1][0] - Decimal(100)
    first = rest.order(
        symbol=BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002", price=low
    ).json()
    new = {
        "symbol": BTC,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.002",
        "price": low - 1,
    }
    ok = rest.call(
        "POST",
        "/api/v3/order/cancelReplace",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrderId=first["orderId"],
        **new,
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    failed = rest.call(
        "POST",
        "/api/v3/order/cancelReplace",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrderId=first["orderId"],
        **new,
    )
    assert failed.status_code == 400 and failed.json()["code"] == -2022
    assert failed.json()["data"]["newOrderResult"] == "NOT_ATTEMPTED"
    second = body["newOrderResponse"]["orderId"]
    partial = rest.call(
        "POST",
        "/api/v3/order/cancelReplace",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrderId=second,
        **(new | {"quantity": "100"}),
    )
    assert partial.status_code == 409 and partial.json()["code"] == -2021
    data = partial.json()["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("SUCCESS", "FAILURE")
    third = rest.order(
        symbol=BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.003", price=low
    ).json()
    amended = rest.ok(
        "PUT",
        "/api/v3/order/amend/keepPriority",
        symbol=BTC,
        orderId=third["orderId"],
        newQty="0.001",
    )
    assert amended["amendedOrder"]["qty"] == "0.00100000"
    grow = rest.call(
        "PUT",
        "/api/v3/order/amend/keepPriority",
        symbol=BTC,
        orderId=third["orderId"],
        newQty="0.01",
    )
    assert grow.status_code == 400


def test_auth_failures(market: BinanceSpotSim, rest: Rest) -> None:
    bad_sig = rest.client.get(
        "/api/v3/account?timestamp=1&signature=00",
        headers={"X-MBX-APIKEY": market.api_keys(0).hmac_key},
    )
    assert bad_sig.status_code == 400 and bad_sig.json()["code"] == -1022
    late = rest.call("GET", "/api/v3/account", timestamp=1)
    assert late.json()["code"] == -1021
    unknown = rest.client.get(
        "/api/v3/account?timestamp=1&signature=00", headers={"X-MBX-APIKEY": "x" * 64}
    )
    assert unknown.status_code == 401 and unknown.json()["code"] == -2015
    read_only = market.add_account(permissions=frozenset({"READ"}))
    reader = Rest(market, read_only, "ed25519")
    try:
        assert reader.ok("GET", "/api/v3/account")["balances"]
        refused = reader.order(symbol=BTC, side="BUY", type="MARKET", quantity="0.001")
        assert refused.status_code == 401 and refused.json()["code"] == -2015
    finally:
        reader.close()
    rsa = Rest(market, market.api_keys(1), "rsa")
    try:
        assert rsa.ok("GET", "/api/v3/account")["uid"] == market.api_keys(1).uid
    finally:
        rsa.close()


def test_removed_listen_key_endpoint(market: BinanceSpotSim, rest: Rest) -> None:
    response = rest.client.post(
        "/api/v3/userDataStream", headers={"X-MBX-APIKEY": market.api_keys(0).hmac_key}
    )
    assert response.status_code == 404


def test_deposit_sends_balance_update(market: BinanceSpotSim, stream: WsApi) -> None:
    market.deposit(market.api_keys(0), "USDT", "100")
    update = stream.next_event()["event"]
    assert update["e"] == "balanceUpdate" and update["d"] == "100.00000000"
    assert stream.next_event()["event"]["e"] == "outboundAccountPosition"


def test_all_orders_and_price_ticker(market: BinanceSpotSim, rest: Rest) -> None:
    """GET /api/v3/allOrders (every kept order, oldest first) and /api/v3/ticker/price."""
    _, bids, _ = market.book(BTC)
    low = bids[-1][0] - Decimal(100)
    ids = [
        rest.order(
            symbol=BTC,
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price=low,
            newOrderRespType="ACK",
        ).json()["orderId"]
        for _ in range(3)
    ]
    rest.ok("DELETE", "/api/v3/order", symbol=BTC, orderId=ids[0])
    filled = rest.order(symbol=BTC, side="BUY", type="MARKET", quantity="0.001").json()
    rejected = rest.order(
        symbol=BTC, side="BUY", type="LIMIT", timeInForce="GTC", quantity="100", price=low
    )
    assert rejected.status_code == 400  # leaves no trace in allOrders either
    rows = rest.ok("GET", "/api/v3/allOrders", symbol=BTC)
    assert [(o["orderId"], o["status"]) for o in rows] == [
        (ids[0], "CANCELED"),
        (ids[1], "NEW"),
        (ids[2], "NEW"),
        (filled["orderId"], "FILLED"),
    ]
    assert rows[1] == rest.ok("GET", "/api/v3/order", symbol=BTC, orderId=ids[1])
    assert [o["orderId"] for o in rest.ok("GET", "/api/v3/allOrders", symbol=BTC, limit=2)] == [
        ids[2],
        filled["orderId"],
    ]
    from_id = rest.ok("GET", "/api/v3/allOrders", symbol=BTC, orderId=ids[1], limit=2)
    assert [o["orderId"] for o in from_id] == ids[1:]
    assert rest.ok("GET", "/api/v3/allOrders", symbol="ETHUSDT") == []
    wide = rest.call("GET", "/api/v3/allOrders", symbol=BTC, startTime=0, endTime=86_400_001)
    assert wide.status_code == 400 and wide.json()["code"] == -1127
    missing = rest.call("GET", "/api/v3/allOrders")
    assert missing.status_code == 400 and missing.json()["code"] == -1102
    assert rest.call("GET", "/api/v3/allOrders", symbol=BTC).headers["X-MBX-USED-WEIGHT-1M"]

    last = filled["fills"][-1]["price"]
    one = httpx.get(f"{market.rest_url}/api/v3/ticker/price", params={"symbol": BTC}).json()
    assert one == {"symbol": BTC, "price": last}
    every = httpx.get(f"{market.rest_url}/api/v3/ticker/price").json()
    assert [t["symbol"] for t in every] == [s.symbol for s in market.symbols]
    assert {"symbol": BTC, "price": last} in every
