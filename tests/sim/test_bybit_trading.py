"""Bybit order lifecycle over signed REST with the private stream as witness."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exconn.sim import BybitSim
from tests.sim.test_bybit_client import Rest, Ws, bybit, private_ws

__all__ = ["bybit"]


def best(sim: BybitSim, cat: str, symbol: str) -> tuple[Decimal, Decimal, Decimal]:
    sim.step(1)  # publish what earlier orders changed: book() is the last published view
    _, bids, asks = sim.book(cat, symbol)
    return bids[0][0], asks[0][0], asks[0][1]


def order_updates(ws: Ws, order_id: str, status: str) -> dict[str, Any]:
    msg = ws.until(
        lambda m: (
            m.get("topic", "").startswith("order")
            and any(o["orderId"] == order_id and o["orderStatus"] == status for o in m["data"])
        )
    )
    return next(o for o in msg["data"] if o["orderId"] == order_id and o["orderStatus"] == status)


def test_linear_lifecycle_partial_fill_position_and_wallet(bybit: BybitSim) -> None:
    rest = Rest(bybit)
    ws = private_ws(bybit, ["order", "execution", "position", "wallet"])
    assert (
        rest.ok(
            "POST",
            "/v5/position/set-leverage",
            category="linear",
            symbol="BTCUSDT",
            buyLeverage="5",
            sellLeverage="5",
        )
        == {}
    )
    again = rest.post(
        "/v5/position/set-leverage",
        category="linear",
        symbol="BTCUSDT",
        buyLeverage="5",
        sellLeverage="5",
    ).json()
    assert again["retCode"] == 110043
    _bid, ask, ask_qty = best(bybit, "linear", "BTCUSDT")
    qty = ask_qty + Decimal("0.5")  # more than the best level: part fills, rest rests
    created = rest.ok(
        "POST",
        "/v5/order/create",
        category="linear",
        symbol="BTCUSDT",
        side="Buy",
        orderType="Limit",
        qty=str(qty),
        price=str(ask),
        orderLinkId="L-1",
    )
    oid = created["orderId"]
    part = order_updates(ws, oid, "PartiallyFilled")
    assert Decimal(part["cumExecQty"]) == ask_qty
    ex = ws.until(lambda m: m.get("topic") == "execution")["data"][0]
    assert ex["orderId"] == oid and Decimal(ex["execQty"]) == ask_qty
    pos = ws.until(lambda m: m.get("topic") == "position")["data"][0]
    assert pos["side"] == "Buy" and Decimal(pos["size"]) == ask_qty and pos["leverage"] == "5"
    ws.until(lambda m: m.get("topic") == "wallet")
    open_orders = rest.ok("GET", "/v5/order/realtime", category="linear", symbol="BTCUSDT")
    assert [o["orderStatus"] for o in open_orders["list"]] == ["PartiallyFilled"]
    execs = rest.ok("GET", "/v5/execution/list", category="linear", symbol="BTCUSDT")
    assert execs["list"][0]["execId"] == ex["execId"]
    positions = rest.ok("GET", "/v5/position/list", category="linear", symbol="BTCUSDT")
    assert positions["list"][0]["size"] == pos["size"]
    assert positions["list"][0]["avgPrice"] == pos["entryPrice"]
    # amend down to what filled plus a bit, then cancel the rest
    rest.ok(
        "POST",
        "/v5/order/amend",
        category="linear",
        symbol="BTCUSDT",
        orderId=oid,
        qty=str(ask_qty + Decimal("0.1")),
    )
    rest.ok("POST", "/v5/order/cancel", category="linear", symbol="BTCUSDT", orderLinkId="L-1")
    done = order_updates(ws, oid, "Cancelled")
    assert done["cancelType"] == "CancelByUser"
    missing = rest.post("/v5/order/cancel", category="linear", symbol="BTCUSDT", orderId=oid).json()
    assert missing["retCode"] == 110001
    # reduce-only: selling more than held closes only the position
    sell = rest.ok(
        "POST",
        "/v5/order/create",
        category="linear",
        symbol="BTCUSDT",
        side="Sell",
        orderType="Market",
        qty=str(ask_qty + 1),
        reduceOnly=True,
    )
    closed = order_updates(ws, sell["orderId"], "Cancelled")
    assert Decimal(closed["cumExecQty"]) == ask_qty
    flat = rest.ok("GET", "/v5/position/list", category="linear", symbol="BTCUSDT")
    assert flat["list"][0]["side"] == "" and Decimal(flat["list"][0]["size"]) == 0
    refused = rest.post(
        "/v5/order/create",
        category="linear",
        symbol="BTCUSDT",
        side="Sell",
        orderType="Market",
        qty="0.01",
        reduceOnly=True,
    ).json()
    assert refused["retCode"] == 110017
    history = rest.ok("GET", "/v5/order/history", category="linear")
    assert {o["orderId"] for o in history["list"]} == {oid, sell["orderId"]}
    ws.close()


def test_spot_fills_tif_postonly_and_balance(bybit: BybitSim) -> None:
    rest = Rest(bybit)
    ws = private_ws(bybit, ["order.spot", "execution.spot", "wallet"])
    bid, ask, ask_qty = best(bybit, "spot", "ETHUSDT")
    filled = rest.ok(
        "POST",
        "/v5/order/create",
        category="spot",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty=str(ask_qty),
        price=str(ask),
    )
    assert order_updates(ws, filled["orderId"], "Filled")["orderStatus"] == "Filled"
    post = rest.ok(
        "POST",
        "/v5/order/create",
        category="spot",
        symbol="ETHUSDT",
        side="Sell",
        orderType="Limit",
        qty="0.01",
        price=str(bid),
        timeInForce="PostOnly",
    )
    cancelled = order_updates(ws, post["orderId"], "Cancelled")
    assert cancelled["rejectReason"] == "EC_PostOnlyWillTakeLiquidity"
    bid, ask, ask_qty = best(bybit, "spot", "ETHUSDT")
    fok = rest.ok(
        "POST",
        "/v5/order/create",
        category="spot",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty=str(ask_qty + 1),
        price=str(ask),
        timeInForce="FOK",
    )
    assert order_updates(ws, fok["orderId"], "Cancelled")["cumExecQty"] == "0.0000"
    ioc = rest.ok(
        "POST",
        "/v5/order/create",
        category="spot",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty=str(ask_qty + 1),
        price=str(ask),
        timeInForce="IOC",
    )
    assert order_updates(ws, ioc["orderId"], "PartiallyFilledCanceled")
    poor = rest.post(
        "/v5/order/create",
        category="spot",
        symbol="BTCUSDT",
        side="Buy",
        orderType="Limit",
        qty="50",
        price=str(best(bybit, "spot", "BTCUSDT")[0]),
    )
    assert poor.json()["retCode"] == 170131
    wallet = rest.ok("GET", "/v5/account/wallet-balance", accountType="UNIFIED", coin="ETH")
    eth = wallet["list"][0]["coin"][0]
    assert Decimal(eth["walletBalance"]) > 100  # started with 100 ETH and bought some
    ws.close()


def test_resting_order_fills_when_the_market_trades_through_it(bybit: BybitSim) -> None:
    rest = Rest(bybit)
    ws = private_ws(bybit, ["order"])
    bid, _, _ = best(bybit, "spot", "SOLUSDT")
    created = rest.ok(
        "POST",
        "/v5/order/create",
        category="spot",
        symbol="SOLUSDT",
        side="Buy",
        orderType="Limit",
        qty="0.1",
        price=str(bid),
    )
    order_updates(ws, created["orderId"], "New")
    for _ in range(20):  # the taker agent hits the bids sooner or later (seeded)
        bybit.step(10)
        got = rest.ok(
            "GET",
            "/v5/order/realtime",
            category="spot",
            symbol="SOLUSDT",
            orderId=created["orderId"],
            openOnly="1",
        )["list"]
        if got and got[0]["orderStatus"] != "New":
            break
    assert got[0]["orderStatus"] in ("PartiallyFilled", "Filled")
    ws.close()


def test_auth_errors(bybit: BybitSim) -> None:
    assert (
        Rest(bybit, secret="wrong").get("/v5/order/realtime", category="spot").json()["retCode"]
        == 10004
    )
    assert (
        Rest(bybit, key="NOKEY").get("/v5/order/realtime", category="spot").json()["retCode"]
        == 10003
    )
    late = Rest(bybit, clock_ms=lambda: 1_000_000)
    assert late.get("/v5/order/realtime", category="spot").json()["retCode"] == 10002
    bybit.add_account("reader", "READKEY", "readsecret", permissions=["READ"])
    reader = Rest(bybit, key="READKEY", secret="readsecret")
    assert (
        reader.post(
            "/v5/order/create",
            category="spot",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Market",
            qty="10",
        ).json()["retCode"]
        == 10005
    )
    r = Rest(bybit).get("/v5/order/realtime", category="spot")
    assert r.headers["X-Bapi-Limit"] == "50" and "X-Bapi-Limit-Reset-Timestamp" in r.headers


def test_key_info_and_account_info(bybit: BybitSim) -> None:
    rest = Rest(bybit)
    info = rest.ok("GET", "/v5/user/query-api")
    assert info["apiKey"] == rest.key and info["secret"] == "" and info["uta"] == 1
    assert info["readOnly"] == 0
    assert info["permissions"]["Spot"] == ["SpotTrade"]
    assert info["permissions"]["ContractTrade"] == ["Order", "Position"]
    assert isinstance(info["userID"], int)
    account = rest.ok("GET", "/v5/account/info")
    assert account["unifiedMarginStatus"] == 5 and account["marginMode"] == "REGULAR_MARGIN"
    # "Any permission can access this endpoint": a read-only key sees its own record.
    key, secret = bybit.add_account("reader", permissions=["READ"])
    reader = Rest(bybit, key, secret)
    mine = reader.ok("GET", "/v5/user/query-api")
    assert mine["apiKey"] == key and mine["readOnly"] == 1
    assert mine["permissions"]["Spot"] == [] and mine["userID"] != info["userID"]
