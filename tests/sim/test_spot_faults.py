"""Every fault kind the Binance spot venue supports, seen from real sockets."""

from __future__ import annotations

import json

import httpx
import pytest
import websocket

from exconn.sim import BinanceSpotSim
from tests.sim.conftest import SimFactory
from tests.sim.helpers import WsClient, wait_until
from tests.sim.spot_client import Rest, WsApi

DEPTH = "btcusdt@depth@100ms"
BTC = "BTCUSDT"


def conn_id(sim: BinanceSpotSim, path_part: str) -> int:
    conns = wait_until(
        lambda: [c for c in sim.connections() if path_part in c["path"]],
        "the connection to register",
    )
    return int(conns[-1]["id"])


def expect_closed(client: WsClient) -> int | None:
    """Read until the socket closes; the close code if a close frame came."""
    for _ in range(10_000):
        try:
            opcode, frame = client.ws.recv_data_frame(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big") if frame.data else None
    raise AssertionError("socket never closed")


def test_drop_one_connection_only(sim: BinanceSpotSim) -> None:
    a, b = WsClient(f"{sim.ws_url}/ws/{DEPTH}"), WsClient(f"{sim.ws_url}/ws/ethusdt@depth")
    try:
        target = conn_id(sim, "ethusdt")
        sim.add_fault("drop", connection=target)
        assert expect_closed(b) is None, "aborted without a close frame"
        sim.step(1)
        assert a.recv_json()["e"] == "depthUpdate"
    finally:
        a.close()
        b.close()


def test_stall_holds_frames_without_closing(sim: BinanceSpotSim) -> None:
    client = WsClient(f"{sim.ws_url}/ws/{DEPTH}")
    try:
        fault = sim.add_fault(
            "stall", connection=conn_id(sim, "depth"), count=None, duration_ms=600_000
        )
        sim.step(3)
        client.ws.settimeout(0.3)
        with pytest.raises(websocket.WebSocketTimeoutException):
            client.ws.recv()
        client.ws.settimeout(10)
        sim.remove_fault(fault)
        events = [client.recv_json() for _ in range(3)]
        assert events[1]["U"] == events[0]["u"] + 1, "nothing lost, only held"
    finally:
        client.close()


def test_skip_sequence_fault_and_malformed(sim: BinanceSpotSim) -> None:
    client = WsClient(f"{sim.ws_url}/ws/{DEPTH}")
    try:
        target = conn_id(sim, "depth")
        sim.step(1)
        first = client.recv_json()
        sim.add_fault("skip_sequence", symbol=BTC)
        sim.add_fault("malformed", connection=target)
        sim.step(2)
        garbage = client.recv_text()
        with pytest.raises(json.JSONDecodeError):
            json.loads(garbage)
        after = client.recv_json()
        assert after["U"] > first["u"] + 1
    finally:
        client.close()


@pytest.mark.parametrize("combined", [False, True])
def test_server_shutdown_event_then_close(sim: BinanceSpotSim, combined: bool) -> None:
    url = f"{sim.ws_url}/stream?streams={DEPTH}" if combined else f"{sim.ws_url}/ws/{DEPTH}"
    client = WsClient(url)
    try:
        sim.add_fault("server_shutdown", connection=conn_id(sim, "/"))
        msg = client.recv_json()
        if combined:
            assert msg["stream"] == "!serverShutdown"
            msg = msg["data"]
        assert msg["e"] == "serverShutdown" and isinstance(msg["E"], int)
        assert expect_closed(client) == 1001
    finally:
        client.close()


def test_close_1008_and_message_rate(make_sim: SimFactory) -> None:
    sim = make_sim(seed=1, ws_messages_per_s=5)
    sim.pause()
    client = WsClient(f"{sim.ws_url}/ws/{DEPTH}")
    try:
        sim.add_fault("close_1008", connection=conn_id(sim, "depth"))
        assert expect_closed(client) == 1008
    finally:
        client.close()
    flooder = WsClient(f"{sim.ws_url}/ws")
    try:
        for i in range(6):
            flooder.send({"method": "LIST_SUBSCRIPTIONS", "id": i})
        assert expect_closed(flooder) == 1008
    finally:
        flooder.close()


def test_connection_lifetime_cap(make_sim: SimFactory) -> None:
    sim = make_sim(seed=1, max_connection_age_s=0.2)
    client = WsClient(f"{sim.ws_url}/ws")
    try:
        assert expect_closed(client) == 1001
        assert sim.stats()["connections_expired"] == 1
    finally:
        client.close()


def test_http_429_418_5xx_faults(sim: BinanceSpotSim) -> None:
    url = f"{sim.rest_url}/api/v3/depth"
    sim.add_fault("http_429", endpoint="GET /api/v3/depth", retry_after=7)
    limited = httpx.get(url, params={"symbol": BTC})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json()["code"] == -1003
    sim.add_fault("http_418", symbol=BTC)
    banned = httpx.get(url, params={"symbol": BTC})
    assert banned.status_code == 418 and "IP banned until" in banned.json()["msg"]
    sim.add_fault("http_5xx", endpoint="GET /api/v3/depth", status=503)
    assert httpx.get(url, params={"symbol": BTC}).status_code == 503
    assert httpx.get(url, params={"symbol": BTC}).status_code == 200, "count 1: gone"


def test_real_weight_limit_escalates_to_ban(sim: BinanceSpotSim) -> None:
    url = f"{sim.rest_url}/api/v3/depth"
    statuses = []
    for _ in range(30):  # 250 weight each against 6000 per minute
        response = httpx.get(url, params={"symbol": BTC, "limit": 5000})
        statuses.append(response.status_code)
        if response.status_code == 418:
            assert int(response.headers["Retry-After"]) > 0
            break
    assert statuses[:24] == [200] * 24 and statuses[24] == 429 and statuses[-1] == 418


def test_error_and_timeout_after_accept(sim: BinanceSpotSim) -> None:
    rest = Rest(sim, sim.api_keys(0))
    try:
        _, bids, _ = sim.book(BTC)
        order = {
            "symbol": BTC,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": bids[-1][0],
        }
        sim.add_fault("error_after_accept", endpoint="POST /api/v3/order")
        failed = rest.order(**order, newClientOrderId="unknown-1")
        assert failed.status_code == 500 and failed.json()["code"] == -1006
        assert (
            rest.ok("GET", "/api/v3/order", symbol=BTC, origClientOrderId="unknown-1")["status"]
            == "NEW"
        )
        sim.add_fault("timeout_after_accept", endpoint="POST /api/v3/order", delay_s=2)
        rest.client.timeout = httpx.Timeout(0.3)
        with pytest.raises(httpx.ReadTimeout):
            rest.order(**order, newClientOrderId="unknown-2")
        rest.client.timeout = httpx.Timeout(10)
        assert (
            rest.ok("GET", "/api/v3/order", symbol=BTC, origClientOrderId="unknown-2")["status"]
            == "NEW"
        )
    finally:
        rest.close()


def test_clock_skew_and_reject_auth(sim: BinanceSpotSim) -> None:
    rest = Rest(sim, sim.api_keys(0))
    try:
        sim.add_fault("clock_skew", count=None, duration_ms=600_000, skew_ms=-30_000)
        skewed = rest.call("GET", "/api/v3/account")
        assert skewed.status_code == 400 and skewed.json()["code"] == -1021
        server = httpx.get(f"{sim.rest_url}/api/v3/time").json()["serverTime"]
        assert rest.ok("GET", "/api/v3/account", timestamp=server)["accountType"] == "SPOT"
        sim.clear_faults()
        sim.add_fault("reject_auth", endpoint="GET /api/v3/account")
        rejected = rest.call("GET", "/api/v3/account")
        assert rejected.status_code == 401 and rejected.json()["code"] == -2015
        assert rest.call("GET", "/api/v3/account").status_code == 200
    finally:
        rest.close()


def test_expire_ws_api_session(sim: BinanceSpotSim) -> None:
    ws = WsApi(sim)
    try:
        keys = sim.api_keys(0)
        ws.request("session.logon", ws.signed_params(keys, "ed25519"))
        ws.request("userDataStream.subscribe")
        sim.add_fault("expire_session", connection=conn_id(sim, "ws-api"))
        assert ws.next_event()["event"]["e"] == "eventStreamTerminated"
        revoked = ws.client.recv_json()
        assert revoked == {
            "id": None,
            "status": 401,
            "error": {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
        }
        assert ws.request("session.status")["result"]["apiKey"] is None
    finally:
        ws.close()


def test_faults_over_http_control_endpoint(sim: BinanceSpotSim) -> None:
    client = WsClient(f"{sim.ws_url}/ws/{DEPTH}")
    try:
        target = conn_id(sim, "depth")
        created = httpx.post(
            f"{sim.rest_url}/sim/faults", json={"kind": "close_1008", "connection": target}
        )
        assert created.status_code == 200 and isinstance(created.json()["id"], int)
        assert expect_closed(client) == 1008
        httpx.post(
            f"{sim.rest_url}/sim/faults",
            json={"kind": "http_429", "endpoint": "GET /api/v3/time", "count": 2},
        )
        listed = httpx.get(f"{sim.rest_url}/sim/faults").json()
        assert [f["kind"] for f in listed] == ["http_429"]
        assert httpx.get(f"{sim.rest_url}/api/v3/time").status_code == 429
        assert httpx.delete(f"{sim.rest_url}/sim/faults").status_code == 200
        assert httpx.get(f"{sim.rest_url}/api/v3/time").status_code == 200
    finally:
        client.close()
