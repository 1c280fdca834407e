"""Injected faults: sequence gaps, malformed frames, dropped connections, pings."""

from __future__ import annotations

import json
from typing import Any

import pytest
import websocket

from exconn.sim import BinanceSpotSim
from tests.sim.conftest import SimFactory
from tests.sim.helpers import WsClient, wait_until

DEPTH = "btcusdt@depth@100ms"


def test_skip_sequence_makes_a_gap(sim: BinanceSpotSim) -> None:
    client = WsClient(f"{sim.ws_url}/ws/{DEPTH}")
    try:
        assert sim.wait_for_connections(1, timeout=10)
        sim.step(2)
        before = sim.last_update_id("BTCUSDT")
        sim.skip_sequence("BTCUSDT")
        sim.step(1)
        skipped_to = sim.last_update_id("BTCUSDT")
        sim.step(2)
        events = [client.recv_json() for _ in range(4)]
        assert events[1]["u"] == before
        assert events[2]["U"] == skipped_to + 1 > events[1]["u"] + 1, "gap expected"
        assert events[3]["U"] == events[2]["u"] + 1
        assert sim.stats()["depth_events_skipped"] == 1
    finally:
        client.close()


def test_inject_malformed_interleaves_garbage(sim: BinanceSpotSim) -> None:
    raw = WsClient(f"{sim.ws_url}/ws/{DEPTH}")
    combined = WsClient(f"{sim.ws_url}/stream?streams={DEPTH}")
    try:
        assert sim.wait_for_connections(2, timeout=10)
        sim.inject_malformed(2)
        sim.step(3)
        for client in (raw, combined):
            frames = [client.recv_text() for _ in range(5)]
            bad = [f for f in frames if not _is_json(f)]
            good = [json.loads(f) for f in frames if _is_json(f)]
            assert [_is_json(f) for f in frames] == [False, True, False, True, True]
            assert len(bad) == 2 and len(good) == 3
            events = [g.get("data", g) for g in good]
            assert events[1]["U"] == events[0]["u"] + 1, "garbage must not cost real events"
        assert "btcusdt@depth@100ms" in bad[0]
        assert sim.stats()["malformed_sent"] == 4
    finally:
        raw.close()
        combined.close()


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_drop_connections_closes_sockets(sim: BinanceSpotSim) -> None:
    clients = [WsClient(f"{sim.ws_url}/ws/{DEPTH}") for _ in range(2)]
    try:
        assert sim.wait_for_connections(2, timeout=10)
        sim.drop_connections()
        for client in clients:
            with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
                for _ in range(100):  # bounded: a dropped socket yields EOF at once
                    client.recv_json()
        wait_until(lambda: sim.connection_count() == 0, "server side to forget the sockets")
        assert sim.stats()["connections_dropped"] == 2
        # The venue stays up: new connections work.
        again = WsClient(f"{sim.ws_url}/ws/{DEPTH}")
        sim.step(1)
        assert again.recv_json()["e"] == "depthUpdate"
        again.close()
    finally:
        for client in clients:
            client.close()


def test_server_pings_and_counts_pongs(make_sim: SimFactory) -> None:
    sim = make_sim(ping_interval_s=0.05)
    sim.pause()
    client = WsClient(f"{sim.ws_url}/ws")
    try:
        opcode, frame = _next_control_frame(client)
        assert opcode == websocket.ABNF.OPCODE_PING and frame.data.isdigit()
        # websocket-client answers the ping with a pong carrying the same payload.
        wait_until(lambda: sim.stats()["pongs_received"] >= 1, "a pong to be counted")
        assert sim.stats()["pings_sent"] >= 1
    finally:
        client.close()


def _next_control_frame(client: WsClient) -> tuple[int, Any]:
    for _ in range(100):
        opcode, frame = client.ws.recv_data_frame(control_frame=True)
        if opcode in (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG):
            return opcode, frame
    raise AssertionError("no control frame")
