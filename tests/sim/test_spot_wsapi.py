"""The WebSocket API: logon, signed requests, user-data subscriptions and their events."""

from __future__ import annotations

from decimal import Decimal

from exconn.sim import BinanceSpotSim
from tests.sim.spot_client import Rest, WsApi, now_ms

BTC = "BTCUSDT"


def test_logon_subscribe_and_order_lifecycle(sim: BinanceSpotSim) -> None:
    keys = sim.api_keys(0)
    ws = WsApi(sim)
    try:
        refused = ws.request("session.logon", ws.signed_params(keys, "hmac"))
        assert refused["status"] == 401 and refused["error"]["code"] == -2015
        early = ws.request("userDataStream.subscribe")
        assert early["status"] == 401
        logon = ws.request("session.logon", ws.signed_params(keys, "ed25519"))
        assert logon["status"] == 200 and logon["result"]["apiKey"] == keys.ed25519_key
        assert logon["result"]["userDataStream"] is False
        sub = ws.request("userDataStream.subscribe")
        assert sub["result"] == {"subscriptionId": 0}
        _, bids, asks = sim.book(BTC)
        placed = ws.request(
            "order.place",
            {
                "symbol": BTC,
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.002",
                "price": str(bids[-1][0]),
                "timestamp": now_ms(),
            },
        )
        assert placed["status"] == 200, placed
        order_id = placed["result"]["orderId"]
        kinds = {r["rateLimitType"] for r in placed["rateLimits"]}
        assert kinds == {"ORDERS", "REQUEST_WEIGHT", "RAW_REQUESTS"}
        new = ws.events_until(lambda e: e["e"] == "executionReport")[-1]
        assert new["subscriptionId"] == 0 and new["event"]["x"] == "NEW"
        status = ws.request(
            "order.status", {"symbol": BTC, "orderId": order_id, "timestamp": now_ms()}
        )
        assert status["result"]["status"] == "NEW"
        canceled = ws.request(
            "order.cancel", {"symbol": BTC, "orderId": order_id, "timestamp": now_ms()}
        )
        assert canceled["result"]["status"] == "CANCELED"
        report = ws.events_until(lambda e: e["e"] == "executionReport")[-1]["event"]
        assert (report["x"], report["X"], report["i"]) == ("CANCELED", "CANCELED", order_id)
        # Taking liquidity: FILLED in one report per fill, consistent with REST.
        taken = ws.request(
            "order.place",
            {
                "symbol": BTC,
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "IOC",
                "quantity": str(asks[0][1]),
                "price": str(asks[0][0]),
                "timestamp": now_ms(),
            },
        )
        assert taken["result"]["status"] == "FILLED"
        fills = ws.events_until(lambda e: e.get("X") == "FILLED")
        reports = [f["event"] for f in fills if f["event"]["e"] == "executionReport"]
        assert reports[-1]["z"] == taken["result"]["executedQty"]
        rest = Rest(sim, keys)
        try:
            query = rest.ok("GET", "/api/v3/order", symbol=BTC, orderId=taken["result"]["orderId"])
            assert query["status"] == "FILLED" and query["executedQty"] == reports[-1]["z"]
        finally:
            rest.close()
        logout = ws.request("session.logout")
        assert logout["status"] == 200
        ended = ws.events_until(lambda e: e["e"] == "eventStreamTerminated")
        assert ended[-1]["subscriptionId"] == 0
    finally:
        ws.close()


def test_subscribe_signature_any_key_and_errors(sim: BinanceSpotSim) -> None:
    ws = WsApi(sim, "?returnRateLimits=false")
    try:
        for index, kind in ((0, "rsa"), (1, "hmac")):
            reply = ws.request(
                "userDataStream.subscribe.signature", ws.signed_params(sim.api_keys(index), kind)
            )
            assert reply["result"] == {"subscriptionId": index}
            assert "rateLimits" not in reply
        dup = ws.request(
            "userDataStream.subscribe.signature", ws.signed_params(sim.api_keys(0), "hmac")
        )
        assert dup["error"]["code"] == -2035
        listed = ws.request("session.subscriptions")
        assert listed["result"] == [{"subscriptionId": 0}, {"subscriptionId": 1}]
        bad = ws.signed_params(sim.api_keys(0), "hmac") | {"signature": "0" * 64}
        assert ws.request("userDataStream.subscribe.signature", bad)["error"]["code"] == -1022
        sim.deposit(sim.api_keys(1), "BTC", Decimal("1"))
        update = ws.next_event()
        assert update["subscriptionId"] == 1 and update["event"]["e"] == "balanceUpdate"
        assert ws.request("userDataStream.unsubscribe", {"subscriptionId": 1})["result"] == {}
        assert ws.request("nope")["status"] == 400
    finally:
        ws.close()
