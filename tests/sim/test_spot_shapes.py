"""Shape conformance: every binance_spot_* reference payload the simulator can produce is
produced here over real sockets and compared key by key, JSON type by JSON type (values
differ). Lists are compared through their first element.

Not produced, and why:
* binance_spot_legacy_rest_listenKey_create.json, binance_spot_legacy_user_listenKeyExpired
  .json, binance_spot_legacy_user_executionReport_unwrapped.json: the REST listenKey and
  unwrapped user stream were retired on 2026-02-20; the simulator answers
  POST /api/v3/userDataStream with 404 (test_spot_trading).
* binance_spot_user_listStatus.json: order lists (OCO/OTO) are not simulated.
* binance_spot_ws_*_request.json, binance_spot_wsapi_*_request.json: requests, not
  responses; they are sent to the simulator below (SUBSCRIBE, LIST_SUBSCRIPTIONS, the
  WS API ones), which proves it accepts them.
Conditional keys the reference carries but a plain order does not (binance.md §4.1 "appear
only when relevant"): executionReport `v` (preventedMatchId, only after self-trade
prevention); the recorded combined aggTrade's `st` (undocumented).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from exconn.sim import BinanceSpotSim
from tests.sim.helpers import WsClient, load
from tests.sim.spot_client import Rest, WsApi, now_ms

BTC = "BTCUSDT"
CONDITIONAL = {"v", "st"}


def conforms(ours: Any, ref: Any, where: str = "$") -> None:
    if isinstance(ref, dict):
        assert isinstance(ours, dict), f"{where}: {ours!r} is not an object"
        missing = set(ref) - set(ours) - CONDITIONAL
        assert not missing, f"{where}: missing {sorted(missing)}"
        for key in ref.keys() & ours.keys():
            conforms(ours[key], ref[key], f"{where}.{key}")
    elif isinstance(ref, list):
        assert isinstance(ours, list), f"{where}: {ours!r} is not a list"
        if ref and ours:
            conforms(ours[0], ref[0], f"{where}[0]")
    elif ref is not None:  # null in the reference (`N` before any fee) fits any value
        assert type(ours) is type(ref), f"{where}: {ours!r} vs {ref!r}"


def test_rest_shapes(sim: BinanceSpotSim, payloads: Path) -> None:
    rest, other = Rest(sim, sim.api_keys(0)), Rest(sim, sim.api_keys(1))

    def check(name: str, body: Any) -> None:
        conforms(body, load(payloads, f"binance_spot_{name}.json"))

    try:
        _, bids, asks = sim.book(BTC)
        low = bids[-1][0] - Decimal(50)
        limit = {
            "symbol": BTC,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.002",
            "price": low,
        }
        check("rest_order_ack", rest.order(**limit, newOrderRespType="ACK").json())
        check("rest_order_result", rest.order(**limit, newOrderRespType="RESULT").json())
        full = rest.order(symbol=BTC, side="SELL", type="MARKET", quantity="0.001").json()
        assert full["fills"]
        check("rest_order_full", full)
        resting = rest.order(**limit).json()
        check(
            "rest_queryOrder",
            rest.ok("GET", "/api/v3/order", symbol=BTC, orderId=resting["orderId"]),
        )
        check("rest_openOrders", rest.ok("GET", "/api/v3/openOrders", symbol=BTC))
        check(
            "rest_amendKeepPriority",
            rest.ok(
                "PUT",
                "/api/v3/order/amend/keepPriority",
                symbol=BTC,
                orderId=resting["orderId"],
                newQty="0.001",
            ),
        )
        check(
            "rest_cancelReplace_success",
            rest.ok(
                "POST",
                "/api/v3/order/cancelReplace",
                cancelReplaceMode="STOP_ON_FAILURE",
                cancelOrderId=resting["orderId"],
                **limit,
            ),
        )
        failed = rest.call(
            "POST",
            "/api/v3/order/cancelReplace",
            cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrderId=1,
            **limit,
        )
        assert failed.status_code == 400
        check("rest_cancelReplace_cancel_failed", failed.json())
        victim = rest.order(**limit).json()
        check(
            "rest_cancelOrder",
            rest.ok("DELETE", "/api/v3/order", symbol=BTC, orderId=victim["orderId"]),
        )
        check("rest_myTrades", rest.ok("GET", "/api/v3/myTrades", symbol=BTC))
        check("rest_account", rest.ok("GET", "/api/v3/account"))
        check(
            "rest_order_test_commission",
            rest.ok("POST", "/api/v3/order/test", computeCommissionRates="true", **limit),
        )
        assert rest.ok("POST", "/api/v3/order/test", **limit) == {}
        check("rest_rateLimit_order", rest.ok("GET", "/api/v3/rateLimit/order"))
        other.order(symbol=BTC, side="BUY", type="MARKET", quoteOrderQty="50")

        def public(path: str, **params: Any) -> Any:
            response = httpx.get(f"{sim.rest_url}{path}", params=params, timeout=10)
            assert response.status_code == 200, response.text
            return response.json()

        check("rest_trades", public("/api/v3/trades", symbol=BTC))
        check("rest_aggTrades", public("/api/v3/aggTrades", symbol=BTC))
        check("rest_klines", public("/api/v3/klines", symbol=BTC, interval="1m"))
        check("rest_ticker24hr_full", public("/api/v3/ticker/24hr", symbol=BTC))
        check("rest_bookTicker", public("/api/v3/ticker/bookTicker", symbol=BTC))
        check("rest_bookTicker_multi", public("/api/v3/ticker/bookTicker"))
        check("rest_time", public("/api/v3/time"))
        check("rest_depth", public("/api/v3/depth", symbol=BTC))
        check("rest_depth_recorded", public("/api/v3/depth", symbol=BTC, limit=10))
        check("rest_exchangeInfo", public("/api/v3/exchangeInfo"))
        error = httpx.get(f"{sim.rest_url}/api/v3/trades", params={"symbol": "NOPE"})
        check("rest_error", error.json())
        book = public("/api/v3/ticker/bookTicker", symbol=BTC)
        _, bids, asks = sim.book(BTC)
        assert (Decimal(book["bidPrice"]), Decimal(book["askPrice"])) == (bids[0][0], asks[0][0])
        trade_ids = {t["id"] for t in public("/api/v3/trades", symbol=BTC)}
        assert full["fills"][0]["tradeId"] in trade_ids, "fills and public trades agree"
    finally:
        rest.close()
        other.close()


def test_stream_shapes(sim: BinanceSpotSim, payloads: Path) -> None:
    streams = [
        "btcusdt@trade",
        "btcusdt@aggTrade",
        "btcusdt@bookTicker",
        "btcusdt@depth5",
        "btcusdt@kline_1m",
        "btcusdt@ticker",
        "btcusdt@miniTicker",
        "btcusdt@depth",
    ]
    client = WsClient(f"{sim.ws_url}/stream?streams={'/'.join(streams)}")
    raw = WsClient(f"{sim.ws_url}/ws")
    rest = Rest(sim, sim.api_keys(0))
    try:
        raw.send(load(payloads, "binance_spot_ws_SUBSCRIBE_request.json"))
        conforms(raw.recv_json(), load(payloads, "binance_spot_ws_SUBSCRIBE_response.json"))
        raw.send(load(payloads, "binance_spot_ws_LIST_SUBSCRIPTIONS_request.json"))
        conforms(
            raw.recv_json(), load(payloads, "binance_spot_ws_LIST_SUBSCRIPTIONS_response.json")
        )
        raw.send(load(payloads, "binance_spot_ws_UNSUBSCRIBE_request.json"))
        assert raw.recv_json() == {"result": None, "id": 312}
        assert sim.wait_for_connections(2, timeout=10)
        rest.order(symbol=BTC, side="BUY", type="MARKET", quoteOrderQty="100")
        sim.step(1)
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(1000):
            msg = client.recv_json()
            seen.setdefault(msg["stream"], msg)
            if set(streams) <= seen.keys():
                break
        names = {
            "btcusdt@trade": "ws_trade",
            "btcusdt@aggTrade": "ws_aggTrade",
            "btcusdt@bookTicker": "ws_bookTicker",
            "btcusdt@depth5": "ws_partialDepth",
            "btcusdt@kline_1m": "ws_kline",
            "btcusdt@ticker": "ws_24hrTicker",
            "btcusdt@miniTicker": "ws_24hrMiniTicker",
            "btcusdt@depth": "ws_depthUpdate",
        }
        for stream, name in names.items():
            conforms(seen[stream]["data"], load(payloads, f"binance_spot_{name}.json"))
        conforms(
            seen["btcusdt@aggTrade"],
            load(payloads, "binance_spot_ws_combined_aggTrade_recorded.json"),
        )
        _, bids, _ = sim.book(BTC)
        depth5 = seen["btcusdt@depth5"]["data"]
        assert [Decimal(p) for p, _ in depth5["bids"]] == [p for p, _ in bids[:5]]
        sim.add_fault(
            "server_shutdown",
            connection=next(c["id"] for c in sim.connections() if c["path"] == "/stream"),
        )
        for _ in range(1000):
            msg = client.recv_json()
            if msg["stream"] == "!serverShutdown":
                conforms(msg, load(payloads, "binance_spot_ws_serverShutdown_combined.json"))
                break
    finally:
        client.close()
        raw.close()
        rest.close()


def test_ws_api_and_user_shapes(sim: BinanceSpotSim, payloads: Path) -> None:
    def ref(name: str) -> Any:
        return load(payloads, f"binance_spot_{name}.json")

    ws = WsApi(sim)
    try:
        keys = sim.api_keys(0)
        logon_ref = ref("wsapi_session_logon_request")
        params = ws.signed_params(keys, "ed25519")
        assert params.keys() == logon_ref["params"].keys()
        conforms(ws.request("session.logon", params), ref("wsapi_session_logon_response"))
        sub_ref = ref("wsapi_userDataStream_subscribe_request")
        conforms(ws.request(sub_ref["method"]), ref("wsapi_userDataStream_subscribe_response"))
        signature_ref = ref("wsapi_userDataStream_subscribe_signature_request")
        other = ws.signed_params(sim.api_keys(1), "ed25519")
        assert other.keys() == signature_ref["params"].keys()
        assert ws.request(signature_ref["method"], other)["status"] == 200
        _, bids, _ = sim.book(BTC)
        place_ref = ref("wsapi_order_place_request")["params"]
        order = {k: place_ref[k] for k in ("symbol", "side", "type", "timeInForce")}
        order |= {"price": str(bids[-1][0]), "quantity": "0.001", "timestamp": now_ms()}
        conforms(ws.request("order.place", order), ref("wsapi_order_place_response"))
        too_big = order | {"quantity": "100", "timestamp": now_ms()}
        conforms(ws.request("order.place", too_big), ref("wsapi_error_response"))
        sim.add_fault("http_418", endpoint="order.place")
        conforms(
            ws.request("order.place", order | {"timestamp": now_ms()}), ref("wsapi_ip_banned_418")
        )
        sim.deposit(keys, "USDT", "1")
        events = ws.events_until(lambda e: e["e"] == "balanceUpdate")
        by_type = {e["event"]["e"]: e for e in events}
        conforms(by_type["executionReport"], ref("user_executionReport"))
        conforms(by_type["outboundAccountPosition"], ref("user_outboundAccountPosition"))
        conforms(by_type["balanceUpdate"], ref("user_balanceUpdate"))
        sim.add_fault(
            "expire_session", connection=next(c["id"] for c in sim.connections() if c["ws_api"])
        )
        conforms(
            ws.events_until(lambda e: e["e"] == "eventStreamTerminated")[-1],
            ref("user_eventStreamTerminated"),
        )
        for _ in range(10):
            frame = ws.client.recv_json()
            if frame.get("status") == 401:
                conforms(frame, ref("wsapi_session_revoked_2015"))
                break
    finally:
        ws.close()
