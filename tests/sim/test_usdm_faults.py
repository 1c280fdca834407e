"""Every USD-M fault the simulator supports, shown happening on real sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websocket

from exconn.sim import BinanceUsdmSim
from tests.sim import test_usdm_helpers as helpers
from tests.sim.test_usdm_helpers import ManualClock, Rest, Ws, wait_until

DEPTH = "btcusdt@depth@100ms"

make_usdm, rest, usdm = helpers.make_usdm, helpers.rest, helpers.usdm  # fixtures


def _open(sim: BinanceUsdmSim, path: str) -> tuple[Ws, int]:
    before = set(sim.connection_ids())
    ws = Ws(f"{sim.ws_url}{path}")
    new = wait_until(lambda: set(sim.connection_ids()) - before, "the connection")
    return ws, new.pop()


def _close_code(ws: Ws) -> int:
    for _ in range(1000):  # skips data frames queued before the close
        opcode, frame = ws.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame[:2])
    raise AssertionError("no close frame")


def test_drop_targets_one_connection(usdm: BinanceUsdmSim) -> None:
    a, a_id = _open(usdm, f"/public/ws/{DEPTH}")
    b, _ = _open(usdm, f"/public/ws/{DEPTH}")
    try:
        usdm.drop_connection(a_id)
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            a.json()
        usdm.step(2)
        assert b.json()["e"] == "depthUpdate"
    finally:
        a.close()
        b.close()


def test_stall_then_gap(usdm: BinanceUsdmSim) -> None:
    ws, conn = _open(usdm, f"/public/ws/{DEPTH}")
    try:
        usdm.step(1)
        before = ws.json()
        fid = usdm.stall_connection(conn, duration_ms=60_000)
        usdm.step(3)
        usdm.remove_fault(fid)
        usdm.step(1)
        after = ws.json()
        assert after["pu"] != before["u"], "stalled events never arrive"
        assert usdm.stats()["frames_stalled"] >= 1
    finally:
        ws.close()


def test_malformed_frame_precedes_event(usdm: BinanceUsdmSim) -> None:
    ws, conn = _open(usdm, f"/public/stream?streams={DEPTH}")
    try:
        usdm.inject_malformed(conn)
        usdm.step(1)
        with pytest.raises(json.JSONDecodeError):
            json.loads(ws.text())
        assert ws.json()["data"]["e"] == "depthUpdate"
    finally:
        ws.close()


def test_server_shutdown_event_then_close(usdm: BinanceUsdmSim) -> None:
    ws, conn = _open(usdm, "/market/stream?streams=btcusdt@aggTrade")
    try:
        usdm.add_fault("server_shutdown", connection=conn)
        usdm.housekeeping()
        msg = ws.json()
        assert msg["stream"] == "!serverShutdown" and msg["data"]["e"] == "serverShutdown"
        assert _close_code(ws) == 1001
    finally:
        ws.close()


def test_close_1008_fault_and_incoming_message_limit(usdm: BinanceUsdmSim) -> None:
    ws, conn = _open(usdm, "/public/ws")
    flood, _ = _open(usdm, "/public/ws")
    try:
        usdm.add_fault("close_1008", connection=conn)
        usdm.housekeeping()
        opcode, frame = ws.ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(frame[:2]) == 1008
        for i in range(11):  # 10 messages per second are allowed on USD-M
            flood.ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        replies = 0
        for _ in range(12):
            opcode, frame = flood.ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                assert int.from_bytes(frame[:2]) == 1008
                break
            replies += 1
        assert replies == 10 and usdm.stats()["ws_rate_limited"] == 1
    finally:
        ws.close()
        flood.close()


def test_connection_lifetime_cap(make_usdm: Any) -> None:
    clock = ManualClock()
    sim = make_usdm(clock=clock, max_connection_ms=5_000)
    ws, _ = _open(sim, f"/public/ws/{DEPTH}")
    try:
        clock.advance(5_000)
        sim.housekeeping()
        assert _close_code(ws) == 1000
    finally:
        ws.close()


def test_rest_faults_by_http_endpoint(usdm: BinanceUsdmSim, rest: Rest) -> None:
    control = httpx.post(
        f"{usdm.rest_url}/sim/faults",
        json={
            "kind": "http_429",
            "venue": "binance_usdm",
            "endpoint": "GET /fapi/v1/depth",
            "count": 1,
            "params": {"retry_after": 7},
        },
    )
    assert control.status_code == 200
    limited = rest.public("/fapi/v1/depth", symbol="BTCUSDT")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert rest.public("/fapi/v1/ping").status_code == 200, "other endpoints unaffected"
    assert rest.public("/fapi/v1/depth", symbol="BTCUSDT").status_code == 200
    usdm.add_fault("http_418", endpoint="GET /fapi/v1/time")
    assert rest.public("/fapi/v1/time").status_code == 418
    usdm.add_fault("http_5xx", endpoint="POST /fapi/v1/order", status=502)
    failed = rest.order(
        side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.003", price="50000.00"
    )
    assert failed.status_code == 502
    assert rest.signed("GET", "/fapi/v1/openOrders").json() == [], "5xx did not execute"
    assert httpx.get(f"{usdm.rest_url}/sim/faults").json() == []


def test_error_and_timeout_after_accept_leave_the_order(usdm: BinanceUsdmSim, rest: Rest) -> None:
    usdm.add_fault("error_after_accept", endpoint="POST /fapi/v1/order")
    response = rest.order(
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.003",
        price="50000.00",
        newClientOrderId="after-5xx",
    )
    assert response.status_code == 503 and response.json()["code"] == -1006
    queried = rest.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="after-5xx")
    assert queried.json()["status"] == "NEW"
    usdm.add_fault("timeout_after_accept", endpoint="POST /fapi/v1/order", hold_s=5)
    with pytest.raises(httpx.ReadTimeout):
        rest.http.post(
            rest.http.base_url.join("/fapi/v1/order"),
            timeout=0.5,
            content=_signed_body(rest, newClientOrderId="after-timeout"),
            headers={"X-MBX-APIKEY": rest.key, "Content-Type": "application/x-www-form-urlencoded"},
        )
    queried = rest.signed(
        "GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="after-timeout"
    )
    assert queried.json()["status"] == "NEW"


def _signed_body(rest: Rest, **extra: Any) -> bytes:
    import hashlib
    import hmac
    import urllib.parse

    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.003",
        "price": "50000.00",
        "timestamp": rest.clock(),
        **extra,
    }
    body = urllib.parse.urlencode(params)
    sig = hmac.new(rest.secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}&signature={sig}".encode()


def test_clock_skew_and_reject_auth(usdm: BinanceUsdmSim, rest: Rest) -> None:
    plain = rest.public("/fapi/v1/time").json()["serverTime"]
    usdm.clock_skew(-120_000)
    skewed = rest.public("/fapi/v1/time").json()["serverTime"]
    assert skewed < plain - 100_000
    assert rest.signed("GET", "/fapi/v1/openOrders").json()["code"] == -1021
    for fault in usdm.faults():
        usdm.remove_fault(fault["id"])
    assert rest.signed("GET", "/fapi/v1/openOrders").status_code == 200
    usdm.add_fault("reject_auth", endpoint="GET /fapi/v1/openOrders")
    rejected = rest.signed("GET", "/fapi/v1/openOrders")
    assert rejected.status_code == 401 and rejected.json()["code"] == -2015
    assert rest.signed("GET", "/fapi/v1/openOrders").status_code == 200


def test_expire_listen_key_fault(usdm: BinanceUsdmSim, rest: Rest) -> None:
    key = rest.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
    ws, conn = _open(usdm, f"/private/stream?listenKey={key}")
    try:
        usdm.add_fault("expire_session", connection=conn)
        usdm.housekeeping()
        msg = ws.json()
        assert msg == {
            "stream": key,
            "data": {"e": "listenKeyExpired", "E": msg["data"]["E"], "listenKey": key},
        }
        assert rest.keyed("PUT", "/fapi/v1/listenKey").json()["code"] == -1125
    finally:
        ws.close()
