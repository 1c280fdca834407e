"""Every Bybit fault kind the simulator supports, shown on real sockets."""

from __future__ import annotations

import httpx
import pytest
import websocket

from exconn.sim import BybitSim
from tests.sim.test_bybit_client import Rest, Ws, bybit, private_ws

__all__ = ["bybit"]
# A close frame reads as "" (not JSON); an aborted socket raises.
CLOSED = (websocket.WebSocketConnectionClosedException, ConnectionError, ValueError)
ORDER = {
    "category": "spot",
    "symbol": "BTCUSDT",
    "side": "Buy",
    "orderType": "Limit",
    "qty": "0.001",
    "price": "59000",
}


def conn_id(sim: BybitSim, channel: str) -> int:
    return next(c["id"] for c in sim.connections() if c["channel"] == channel)


def test_drop_and_malformed_and_stall(bybit: BybitSim) -> None:
    ws = Ws(f"{bybit.ws_url}/v5/public/linear")
    ws.send({"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
    ws.recv()
    bybit.inject_malformed(connection=conn_id(bybit, "linear"))
    bybit.step(20)
    assert ws.ws.recv().startswith('{"topic": "orderbook", "data": {bad')
    bybit.stall(connection=conn_id(bybit, "linear"), duration_ms=300)
    ws.send({"op": "ping"})
    pong = ws.until(lambda m: m.get("ret_msg") == "pong")  # arrives once the stall ends
    assert pong["op"] == "ping"
    assert bybit.faults() == [] or all(f["kind"] == "stall" for f in bybit.faults())
    bybit.drop_connection(connection=conn_id(bybit, "linear"))
    with pytest.raises(CLOSED):
        ws.until(lambda m: False)


def test_expire_session_and_reject_auth(bybit: BybitSim) -> None:
    ws = private_ws(bybit, ["order"])
    bybit.expire_session(connection=conn_id(bybit, "private"))
    with pytest.raises(CLOSED):
        ws.until(lambda m: False)
    bybit.reject_auth()
    with pytest.raises(AssertionError):
        private_ws(bybit, ["order"])
    assert Rest(bybit).get("/v5/order/realtime", category="spot").json()["retCode"] == 0
    bybit.reject_auth(endpoint="GET /v5/order/realtime")
    assert Rest(bybit).get("/v5/order/realtime", category="spot").json()["retCode"] == 10003


def test_rest_faults(bybit: BybitSim) -> None:
    rest = Rest(bybit)
    bybit.rate_limit(endpoint="POST /v5/order/create")
    limited = rest.post("/v5/order/create", **ORDER)
    assert limited.json()["retCode"] == 10006 and "X-Bapi-Limit-Reset-Timestamp" in limited.headers
    bybit.ip_limit()
    assert httpx.get(f"{bybit.rest_url}/v5/market/time").status_code == 403
    bybit.add_fault("http_5xx", endpoint="GET /v5/market/time", status=502)
    assert httpx.get(f"{bybit.rest_url}/v5/market/time").status_code == 502
    bybit.error_after_accept()
    assert rest.post("/v5/order/create", orderLinkId="acc-1", **ORDER).status_code == 500
    found = rest.ok("GET", "/v5/order/realtime", category="spot", orderLinkId="acc-1")
    assert found["list"][0]["orderStatus"] == "New"  # the order exists
    bybit.timeout_after_accept(delay_s=5)
    with pytest.raises(httpx.ReadTimeout):
        rest.http.post(
            f"{bybit.rest_url}/v5/order/create",
            timeout=0.3,
            content=(
                body := '{"category":"spot","symbol":"BTCUSDT","side":"Buy",'
                '"orderType":"Limit","qty":"0.001","price":"59000",'
                '"orderLinkId":"acc-2"}'
            ),
            headers=rest.headers(body),
        )
    found = rest.ok("GET", "/v5/order/realtime", category="spot", orderLinkId="acc-2")
    assert found["list"][0]["orderLinkId"] == "acc-2"


def test_clock_skew_and_http_control_endpoint(bybit: BybitSim) -> None:
    bybit.clock_skew(-60_000)
    assert Rest(bybit).get("/v5/order/realtime", category="spot").json()["retCode"] == 10002
    bybit.clear_faults()
    r = httpx.post(
        f"{bybit.rest_url}/sim/faults",
        json={"kind": "skip_sequence", "venue": "bybit", "symbol": "SOLUSDT"},
    )
    assert r.status_code == 200
    ws = Ws(f"{bybit.ws_url}/v5/public/spot")
    ws.send({"op": "subscribe", "args": ["orderbook.50.SOLUSDT"]})
    ws.recv()
    u0 = ws.recv()["data"]["u"]
    bybit.step(5)
    assert ws.until(lambda m: m.get("type") == "delta")["data"]["u"] == u0 + 2
