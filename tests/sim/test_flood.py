"""Flood mode: pre-encoded depth updates written straight to the first subscriber."""

from __future__ import annotations

import httpx
import pytest

from exconn.sim import BinanceSpotSim
from tests.sim.helpers import LocalBook, WsClient, event_of, wait_until


def run_flood(sim: BinanceSpotSim, url: str, stream: str, n_updates: int) -> LocalBook:
    sim.prepare_flood("BTCUSDT", n_updates, levels_per_update=3)
    start_id = sim.last_update_id("BTCUSDT")
    client = WsClient(url)
    try:
        request_id = client.request("SUBSCRIBE", [stream])
        assert client.recv_json() == {"result": None, "id": request_id}, "ack comes first"
        snapshot = httpx.get(
            f"{sim.rest_url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 1000},
            timeout=10,
        ).json()
        # Until the flood is written REST serves the start state (unless it is already done).
        assert snapshot["lastUpdateId"] in (start_id, start_id + n_updates)
        book = LocalBook()
        book.load_snapshot(snapshot)
        previous = start_id
        for _ in range(n_updates):
            msg = client.recv_json()
            if "stream" in msg:
                assert msg["stream"] == stream
            event = event_of(msg)
            assert event["U"] == event["u"] == previous + 1
            previous = event["u"]
            book.on_event(event)
        assert previous == start_id + n_updates
        return book
    finally:
        client.close()


def test_raw_flood_reaches_the_final_book(sim: BinanceSpotSim) -> None:
    book = run_flood(sim, f"{sim.ws_url}/ws", "btcusdt@depth@100ms", 5_000)
    final = sim.flood_final_book("BTCUSDT")
    assert book.view() == final
    wait_until(lambda: sim.stats().get("floods_completed") == 1, "flood completion")
    assert sim.book("BTCUSDT") == final
    # The market continues from the flood's last id.
    sim.step(1)
    assert sim.last_update_id("BTCUSDT") > final[0]


def test_combined_flood_with_plain_depth_stream(sim: BinanceSpotSim) -> None:
    book = run_flood(sim, f"{sim.ws_url}/stream", "btcusdt@depth", 2_000)
    assert book.view() == sim.flood_final_book("BTCUSDT")


def test_flood_goes_only_to_the_first_subscriber(sim: BinanceSpotSim) -> None:
    sim.prepare_flood("BTCUSDT", 10)
    bystander = WsClient(f"{sim.ws_url}/ws/ethusdt@depth@100ms")
    try:
        flooded = WsClient(f"{sim.ws_url}/ws/btcusdt@depth@100ms")  # path streams count too
        events = [flooded.recv_json() for _ in range(10)]
        assert [e["u"] for e in events] == list(range(events[0]["U"], events[0]["U"] + 10))
        flooded.close()
        wait_until(lambda: sim.stats().get("floods_completed") == 1, "flood completion")
        sim.step(1)
        assert bystander.recv_json()["s"] == "ETHUSDT"
    finally:
        bystander.close()


def test_market_is_frozen_while_a_flood_is_armed(sim: BinanceSpotSim) -> None:
    before = sim.book("SOLUSDT")
    sim.prepare_flood("SOLUSDT", 5)
    with pytest.raises(RuntimeError):
        sim.step(1)
    with pytest.raises(RuntimeError):
        sim.prepare_flood("BTCUSDT", 5)
    assert sim.book("SOLUSDT") == before, "REST and book() keep the start state"
    with pytest.raises(KeyError):
        sim.flood_final_book("BTCUSDT")
