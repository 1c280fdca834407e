"""USD-M trading: order lifecycle, positions, modes, and the listenKey user stream."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exconn.sim import BinanceUsdmSim
from tests.sim import test_usdm_helpers as helpers
from tests.sim.test_usdm_helpers import ManualClock, Rest, Ws

make_usdm, rest, usdm = helpers.make_usdm, helpers.rest, helpers.usdm  # fixtures


def _user_stream(sim: BinanceUsdmSim, rest: Rest) -> Ws:
    key = rest.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
    before = sim.connection_count()
    ws = Ws(f"{sim.ws_url}/private/ws?listenKey={key}")
    assert sim.wait_for_connections(before + 1, 10)
    return ws


def _order_events(ws: Ws, order_id: int, until_status: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for _ in range(100):
        msg = ws.json()
        if msg["e"] == "ORDER_TRADE_UPDATE" and msg["o"]["i"] == order_id:
            events.append(msg["o"])
            if msg["o"]["X"] == until_status:
                return events
    raise AssertionError(f"order {order_id} never reached {until_status}: {events}")


def _top(rest: Rest) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    t = rest.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT").json()
    return (
        Decimal(t["bidPrice"]),
        Decimal(t["bidQty"]),
        Decimal(t["askPrice"]),
        Decimal(t["askQty"]),
    )


def _second(sim: BinanceUsdmSim, rest: Rest) -> Rest:
    key, secret = sim.add_account()
    return Rest(sim, key, secret, rest.clock)


def test_partial_then_filled_with_user_stream(usdm: BinanceUsdmSim, rest: Rest) -> None:
    ws = _user_stream(usdm, rest)
    other = _second(usdm, rest)
    try:
        _, _, ask, ask_qty = _top(rest)
        qty = ask_qty + Decimal("0.005")
        placed = rest.order(
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity=str(qty),
            price=str(ask),
            newClientOrderId="lifecycle-1",
        ).json()
        assert placed["status"] == "PARTIALLY_FILLED"
        assert Decimal(placed["executedQty"]) == ask_qty
        events = _order_events(ws, placed["orderId"], "PARTIALLY_FILLED")
        assert [e["x"] for e in events] == ["NEW", "TRADE"]
        opened = rest.signed("GET", "/fapi/v1/openOrders", symbol="BTCUSDT").json()
        assert [o["orderId"] for o in opened] == [placed["orderId"]]
        fill = other.order(
            side="SELL", type="LIMIT", timeInForce="IOC", quantity="0.005", price=str(ask)
        ).json()
        assert fill["status"] == "FILLED"
        last = _order_events(ws, placed["orderId"], "FILLED")[-1]
        assert last["x"] == "TRADE" and last["m"] is True and Decimal(last["z"]) == qty
        update = ws.until(lambda m: m["e"] == "ACCOUNT_UPDATE")
        assert Decimal(update["a"]["P"][0]["pa"]) == qty
        assert rest.signed("GET", "/fapi/v1/openOrders").json() == []
        (pos,) = rest.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT").json()
        assert Decimal(pos["positionAmt"]) == qty and Decimal(pos["entryPrice"]) == ask
        queried = rest.signed(
            "GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="lifecycle-1"
        ).json()
        assert queried["status"] == "FILLED"
    finally:
        ws.close()
        other.close()


def test_amend_and_cancel(usdm: BinanceUsdmSim, rest: Rest) -> None:
    ws = _user_stream(usdm, rest)
    try:
        placed = rest.order(
            side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.003", price="50000.00"
        ).json()
        oid = placed["orderId"]
        amended = rest.signed(
            "PUT",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            orderId=oid,
            side="BUY",
            quantity="0.004",
            price="50100.00",
        ).json()
        assert amended["price"] == "50100.00" and amended["origQty"] == "0.004"
        same = rest.signed(
            "PUT",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            orderId=oid,
            side="BUY",
            quantity="0.004",
            price="50100.00",
        ).json()
        assert same["code"] == -5027
        missing = rest.signed(
            "PUT", "/fapi/v1/order", symbol="BTCUSDT", orderId=oid, side="BUY", quantity="0.004"
        ).json()
        assert missing["code"] == -1102
        (listed,) = rest.signed("GET", "/fapi/v1/openOrders", symbol="BTCUSDT").json()
        assert listed["price"] == "50100.00"
        canceled = rest.signed("DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=oid).json()
        assert canceled["status"] == "CANCELED"
        events = _order_events(ws, oid, "CANCELED")
        assert [e["x"] for e in events] == ["NEW", "AMENDMENT", "CANCELED"]
        again = rest.signed("DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=oid).json()
        assert again["code"] == -2011
        assert (
            rest.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=999999).json()["code"]
            == -2013
        )
    finally:
        ws.close()


def test_ioc_fok_expire_and_gtx_rejects(usdm: BinanceUsdmSim, rest: Rest) -> None:
    ws = _user_stream(usdm, rest)
    try:
        ioc = rest.order(
            side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.003", price="50000.00"
        ).json()
        assert ioc["status"] == "EXPIRED"
        assert [e["X"] for e in _order_events(ws, ioc["orderId"], "EXPIRED")] == ["NEW", "EXPIRED"]
        _, _, ask, ask_qty = _top(rest)
        fok = rest.order(
            side="BUY",
            type="LIMIT",
            timeInForce="FOK",
            quantity=str(ask_qty + Decimal("0.001")),
            price=str(ask),
        ).json()
        assert fok["status"] == "EXPIRED" and fok["executedQty"] == "0.000"
        gtx = rest.order(
            side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.003", price=str(ask)
        ).json()
        assert gtx["code"] == -5022
        algo = rest.order(side="BUY", type="STOP_MARKET", quantity="0.003").json()
        assert algo["code"] == -4120
        bad_cid = rest.order(
            side="BUY", type="MARKET", quantity="0.003", newClientOrderId="bad id!"
        ).json()
        assert bad_cid["code"] == -1100
        assert rest.signed("GET", "/fapi/v1/openOrders").json() == []
    finally:
        ws.close()


def test_reduce_only(usdm: BinanceUsdmSim, rest: Rest) -> None:
    nothing = rest.order(side="SELL", type="MARKET", quantity="0.005", reduceOnly="true").json()
    assert nothing["code"] == -2022
    assert rest.order(side="BUY", type="MARKET", quantity="0.005").json()["status"] == "FILLED"
    closing = rest.order(side="SELL", type="MARKET", quantity="0.010", reduceOnly="true").json()
    assert closing["status"] == "EXPIRED" and closing["executedQty"] == "0.005"
    (pos,) = rest.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT").json()
    assert Decimal(pos["positionAmt"]) == 0
    assert rest.signed("GET", "/fapi/v3/positionRisk").json() == []


def test_hedge_mode_and_leverage(usdm: BinanceUsdmSim, rest: Rest) -> None:
    assert rest.signed("GET", "/fapi/v1/positionSide/dual").json() == {"dualSidePosition": False}
    ok = rest.signed("POST", "/fapi/v1/positionSide/dual", dualSidePosition="true").json()
    assert ok == {"code": 200, "msg": "success"}
    assert rest.signed("GET", "/fapi/v1/positionSide/dual").json() == {"dualSidePosition": True}
    assert rest.order(side="BUY", type="MARKET", quantity="0.005").json()["code"] == -4061
    assert (
        rest.order(
            side="BUY", type="MARKET", quantity="0.005", positionSide="LONG", reduceOnly="true"
        ).json()["code"]
        == -1106
    )
    lev = rest.signed("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=10).json()
    assert lev["leverage"] == 10
    assert (
        rest.signed("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=500).json()["code"]
        == -4028
    )
    assert (
        rest.order(side="BUY", type="MARKET", quantity="0.005", positionSide="LONG").json()[
            "status"
        ]
        == "FILLED"
    )
    assert (
        rest.order(side="SELL", type="MARKET", quantity="0.002", positionSide="SHORT").json()[
            "status"
        ]
        == "FILLED"
    )
    positions = rest.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT").json()
    amounts = {p["positionSide"]: Decimal(p["positionAmt"]) for p in positions}
    assert amounts == {"LONG": Decimal("0.005"), "SHORT": Decimal("-0.002")}
    assert {p["leverage"] for p in positions} == {"10"}
    # Closing LONG is a SELL on LONG: implicitly reduce-only, it cannot open more.
    over = rest.order(side="SELL", type="MARKET", quantity="0.009", positionSide="LONG").json()
    assert over["status"] == "EXPIRED" and over["executedQty"] == "0.005"
    back = rest.signed("POST", "/fapi/v1/positionSide/dual", dualSidePosition="false").json()
    assert back["code"] == -4068


def test_listen_key_keepalive_and_expiry(make_usdm: Any) -> None:
    clock = ManualClock()
    sim = make_usdm(clock=clock, listen_key_validity_ms=60 * 60 * 1000)
    key, secret = sim.api_keys()[0]
    rest = Rest(sim, key, secret, clock)
    try:
        listen_key = rest.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
        assert len(listen_key) == 64
        assert rest.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"] == listen_key
        ws = Ws(f"{sim.ws_url}/private/ws?listenKey={listen_key}")
        assert sim.wait_for_connections(1, 10)
        clock.advance(50 * 60 * 1000)
        assert rest.keyed("PUT", "/fapi/v1/listenKey").status_code == 200
        assert sim.listen_key_expiry(listen_key) == clock.now + 60 * 60 * 1000
        clock.advance(50 * 60 * 1000)  # 100 min after creation: alive thanks to keepalive
        sim.housekeeping()
        assert sim.listen_key_expiry(listen_key) is not None
        clock.advance(11 * 60 * 1000)
        sim.housekeeping()
        expired = ws.json()
        assert expired == {"e": "listenKeyExpired", "E": clock.now, "listenKey": listen_key}
        assert rest.keyed("PUT", "/fapi/v1/listenKey").json()["code"] == -1125
        ws.close()
    finally:
        rest.close()


def test_auth_checks(usdm: BinanceUsdmSim, rest: Rest) -> None:
    bad = Rest(usdm, rest.key, "0" * 64, rest.clock)
    old = Rest(usdm, rest.key, rest.secret, lambda: rest.clock() - 60_000)
    unknown = Rest(usdm, "A" * 64, rest.secret, rest.clock)
    usdm.add_key(rest.key, "R" * 64, "s" * 64, permissions=["READ"])
    read_only = Rest(usdm, "R" * 64, "s" * 64, rest.clock)
    try:
        assert bad.order(side="BUY", type="MARKET", quantity="0.003").json()["code"] == -1022
        assert old.order(side="BUY", type="MARKET", quantity="0.003").json()["code"] == -1021
        response = unknown.order(side="BUY", type="MARKET", quantity="0.003")
        assert response.status_code == 401 and response.json()["code"] == -2015
        assert read_only.order(side="BUY", type="MARKET", quantity="0.003").json()["code"] == -2015
        assert read_only.signed("GET", "/fapi/v1/openOrders").status_code == 200
        assert rest.http.post("/fapi/v1/listenKey").json()["code"] == -2014
    finally:
        for client in (bad, old, unknown, read_only):
            client.close()


def test_rate_limits_429_then_418_and_order_headers(make_usdm: Any) -> None:
    from exconn.sim.limits import RateLimit

    clock = ManualClock(1_800_000_000_000)  # frozen inside one minute bucket
    sim = make_usdm(
        clock=clock,
        rate_limits=(
            RateLimit("REQUEST_WEIGHT", "MINUTE", 1, 10),
            RateLimit("ORDERS", "SECOND", 10, 2),
        ),
    )
    key, secret = sim.api_keys()[0]
    rest = Rest(sim, key, secret, clock)
    try:
        placed = rest.order(
            side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.003", price="50000.00"
        )
        assert placed.headers["X-MBX-ORDER-COUNT-10S"] == "1"
        rest.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.003", price="50000.00")
        third = rest.order(
            side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.003", price="50000.00"
        )
        assert third.status_code == 429 and third.json()["code"] == -1015
        statuses = [rest.public("/fapi/v1/ping").status_code for _ in range(11)]
        assert statuses[-1] == 429 and "Retry-After" in rest.public("/fapi/v1/time").headers
        assert rest.public("/fapi/v1/time").status_code == 418
    finally:
        rest.close()
