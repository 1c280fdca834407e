"""Market streams over real WebSockets: control messages, raw vs combined, event shapes."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

from exconn.sim import BinanceSpotSim
from tests.sim.helpers import WIRE_NUMBER, WsClient, event_of, load, same_shape, wait_until

DEPTH = "btcusdt@depth@100ms"


def test_subscribe_ack_list_and_events(sim: BinanceSpotSim, payloads: Path) -> None:
    client = WsClient(f"{sim.ws_url}/ws")
    try:
        assert sim.wait_for_connections(1, timeout=10)
        request = load(payloads, "binance_spot_ws_SUBSCRIBE_request.json")
        client.send(request)
        ack = client.recv_json()
        assert ack == load(payloads, "binance_spot_ws_SUBSCRIBE_response.json")
        client.send({"method": "SUBSCRIBE", "params": [DEPTH, "unknown@stream"], "id": 2})
        assert client.recv_json() == {"result": None, "id": 2}
        client.send(load(payloads, "binance_spot_ws_LIST_SUBSCRIPTIONS_request.json"))
        listed = client.recv_json()
        assert listed == {"result": [*request["params"], DEPTH, "unknown@stream"], "id": 3}
        assert set(sim.subscriptions()) == {*request["params"], DEPTH, "unknown@stream"}
        sim.step(3)
        events = [client.recv_json() for _ in range(6)]  # @depth and @depth@100ms, 3 each
        reference = load(payloads, "binance_spot_ws_depthUpdate.json")
        for event in events:
            assert event.keys() == reference.keys()
            same_shape(event, reference)
            assert event["e"] == "depthUpdate" and event["s"] == "BTCUSDT"
            for price, qty in event["b"] + event["a"]:
                assert WIRE_NUMBER.match(price) and WIRE_NUMBER.match(qty)
        assert events[-1]["u"] == sim.last_update_id("BTCUSDT")
    finally:
        client.close()


def collect_depth(client: WsClient, count: int) -> list[dict[str, Any]]:
    return [event_of(client.recv_json()) for _ in range(count)]


def test_raw_path_streams_and_continuity(sim: BinanceSpotSim) -> None:
    client = WsClient(f"{sim.ws_url}/ws/{DEPTH}/ethusdt@depth@100ms")
    try:
        assert sim.wait_for_connections(1, timeout=10)
        sim.step(20)
        events = collect_depth(client, 40)
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            assert "stream" not in event and event["e"] == "depthUpdate"
            by_symbol.setdefault(event["s"], []).append(event)
        assert by_symbol.keys() == {"BTCUSDT", "ETHUSDT"}
        for series in by_symbol.values():
            assert len(series) == 20
            for previous, current in pairwise(series):
                assert current["U"] == previous["u"] + 1
    finally:
        client.close()


def test_combined_stream_wraps_payloads(sim: BinanceSpotSim, payloads: Path) -> None:
    client = WsClient(f"{sim.ws_url}/stream?streams={DEPTH}/btcusdt@trade")
    try:
        assert sim.wait_for_connections(1, timeout=10)
        reference = load(payloads, "binance_spot_ws_trade.json")
        trades: list[dict[str, Any]] = []
        for _ in range(200):  # bounded: the seeded market trades within a few intervals
            sim.step(1)
            msgs = client.recv_until(lambda m: m["stream"] == DEPTH)
            for msg in msgs:
                assert msg.keys() == {"stream", "data"}
                if msg["stream"] == "btcusdt@trade":
                    trades.append(msg["data"])
            if trades:
                break
        assert trades, "no trade in 200 intervals"
        for trade in trades:
            assert trade.keys() == reference.keys()
            same_shape(trade, reference)
            assert trade["e"] == "trade" and trade["s"] == "BTCUSDT" and trade["M"] is True
            assert WIRE_NUMBER.match(trade["p"]) and WIRE_NUMBER.match(trade["q"])
        assert sim.stats()["trades"] >= len(trades)
    finally:
        client.close()


def test_unsubscribe_stops_delivery(sim: BinanceSpotSim) -> None:
    client = WsClient(f"{sim.ws_url}/ws")
    try:
        request_id = client.request("SUBSCRIBE", [DEPTH, "ethusdt@depth@100ms"])
        assert client.response(request_id)[0] == {"result": None, "id": request_id}
        sim.step(2)
        request_id = client.request("UNSUBSCRIBE", [DEPTH])
        response, before = client.response(request_id)
        assert response == {"result": None, "id": request_id}
        assert {e["s"] for e in before} == {"BTCUSDT", "ETHUSDT"}
        sim.step(5)
        after = collect_depth(client, 5)
        assert {e["s"] for e in after} == {"ETHUSDT"}
        request_id = client.request("LIST_SUBSCRIPTIONS")
        assert client.response(request_id)[0]["result"] == ["ethusdt@depth@100ms"]
        assert sim.subscriptions() == ["ethusdt@depth@100ms"]
    finally:
        client.close()


def test_set_and_get_combined_property(sim: BinanceSpotSim) -> None:
    client = WsClient(f"{sim.ws_url}/ws/{DEPTH}")
    try:
        request_id = client.request("GET_PROPERTY", ["combined"])
        assert client.recv_json() == {"result": False, "id": request_id}
        request_id = client.request("SET_PROPERTY", ["combined", True])
        assert client.recv_json() == {"result": None, "id": request_id}
        sim.step(1)
        assert client.recv_json()["stream"] == DEPTH
        request_id = client.request("SET_PROPERTY", ["combined", "yes"])
        assert client.recv_json() == {
            "code": 1, "msg": "Invalid value type: expected Boolean", "id": request_id
        }
        request_id = client.request("GET_PROPERTY", ["colour"])
        assert client.recv_json() == {"code": 0, "msg": "Unknown property", "id": request_id}
    finally:
        client.close()


def test_invalid_requests_get_binance_errors(sim: BinanceSpotSim) -> None:
    client = WsClient(f"{sim.ws_url}/ws")
    try:
        client.send("{this is not json")
        error = client.recv_json()
        assert error.keys() == {"code", "msg"} and error["code"] == 3
        assert error["msg"].startswith("Invalid JSON")
        client.send(json.dumps({"method": "SUBSCRIBE", "params": "btcusdt@depth", "id": 9}))
        error = client.recv_json()
        assert error["code"] == 2 and error["id"] == 9
        assert error["msg"].startswith("Invalid request")
        client.send(json.dumps({"method": "NOPE", "id": "abc"}))
        assert client.recv_json()["id"] == "abc"
        assert sim.subscriptions() == []
    finally:
        client.close()


def test_connection_count_follows_clients(sim: BinanceSpotSim) -> None:
    clients = [WsClient(f"{sim.ws_url}/ws") for _ in range(3)]
    try:
        assert sim.wait_for_connections(3, timeout=10)
        assert sim.connection_count() == 3
    finally:
        for client in clients:
            client.close()
    wait_until(lambda: sim.connection_count() == 0, "connections to close")
