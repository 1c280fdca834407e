"""Bybit public data: REST market endpoints and public WS book, trades, tickers, ping."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from exconn.sim import BybitSim
from tests.sim.test_bybit_client import LocalBook, Ws, bybit

__all__ = ["bybit"]


@pytest.mark.parametrize("category", ["spot", "linear"])
def test_client_rebuilds_the_book_from_snapshot_and_deltas(bybit: BybitSim, category: str) -> None:
    ws = Ws(f"{bybit.ws_url}/v5/public/{category}")
    ws.send({"op": "subscribe", "args": ["orderbook.50.BTCUSDT", "orderbook.1.BTCUSDT"]})
    assert ws.recv()["success"] is True
    book50, book1 = LocalBook(50), LocalBook(1)
    for _ in range(2):
        msg = ws.recv()
        (book50 if msg["topic"] == "orderbook.50.BTCUSDT" else book1).apply(msg)
    bybit.step(40)
    target = bybit.last_update_id(category, "BTCUSDT", 50)
    while book50.u < target:
        msg = ws.until(lambda m: m.get("topic", "").startswith("orderbook."))
        (book50 if msg["topic"] == "orderbook.50.BTCUSDT" else book1).apply(msg)
    assert book50.gaps == []
    assert book50.view() == bybit.book(category, "BTCUSDT", 50)
    ws.close()


def test_skip_sequence_fault_leaves_a_u_gap(bybit: BybitSim) -> None:
    ws = Ws(f"{bybit.ws_url}/v5/public/linear")
    ws.send({"op": "subscribe", "args": ["orderbook.50.ETHUSDT"]})
    ws.recv()
    book = LocalBook(50)
    book.apply(ws.recv())
    bybit.skip_sequence("ETHUSDT")
    bybit.step(10)
    target = bybit.last_update_id("linear", "ETHUSDT", 50)
    while book.u < target:
        book.apply(ws.until(lambda m: m.get("topic") == "orderbook.50.ETHUSDT"))
    assert len(book.gaps) == 1 and book.gaps[0][1] == book.gaps[0][0] + 2
    ws.close()


def test_rest_orderbook_matches_the_1000_level_stream(bybit: BybitSim) -> None:
    bybit.step(5)
    r = httpx.get(
        f"{bybit.rest_url}/v5/market/orderbook",
        params={"category": "spot", "symbol": "SOLUSDT", "limit": "200"},
    ).json()
    u, bids, asks = bybit.book("spot", "SOLUSDT")
    assert r["result"]["u"] == u
    assert [(Decimal(p), Decimal(q)) for p, q in r["result"]["b"]] == bids[:200]
    assert [(Decimal(p), Decimal(q)) for p, q in r["result"]["a"]] == asks[:200]


def test_market_endpoints_and_errors(bybit: BybitSim) -> None:
    bybit.step(30)
    base = bybit.rest_url
    for cat in ("spot", "linear"):
        trades = httpx.get(
            f"{base}/v5/market/recent-trade", params={"category": cat, "symbol": "BTCUSDT"}
        ).json()["result"]
        assert trades["list"], "the agents traded"
        kline = httpx.get(
            f"{base}/v5/market/kline",
            params={"category": cat, "symbol": "BTCUSDT", "interval": "1"},
        ).json()
        assert kline["result"]["list"][0][5] != "0"
    bad = httpx.get(f"{base}/v5/market/orderbook", params={"category": "spot", "symbol": "NOPE"})
    assert bad.json()["retCode"] == 10001


def test_pong_and_subscribe_shapes_per_channel(bybit: BybitSim) -> None:
    spot = Ws(f"{bybit.ws_url}/v5/public/spot")
    spot.send({"req_id": "1", "op": "ping"})
    assert spot.recv() == {
        "success": True,
        "ret_msg": "pong",
        "conn_id": spot_conn_id(bybit, "spot"),
        "op": "ping",
    }
    spot.send({"op": "subscribe", "args": [f"publicTrade.X{i}" for i in range(11)]})
    assert spot.recv()["success"] is False  # spot allows 10 args per request
    spot.send({"op": "subscribe", "args": ["invalid.topic.BTCUSDT"]})
    assert spot.recv()["ret_msg"] == "Invalid topic: invalid.topic.BTCUSDT"
    linear = Ws(f"{bybit.ws_url}/v5/public/linear")
    linear.send({"req_id": "7", "op": "ping"})
    pong = linear.recv()
    assert pong["req_id"] == "7" and pong["ret_msg"] == "pong" and pong["op"] == "ping"
    linear.send(
        {
            "op": "subscribe",
            "args": [f"publicTrade.BTCUSDT{i}" for i in range(0)] + ["publicTrade.BTCUSDT"] * 1,
        }
    )
    assert linear.recv()["success"] is True
    spot.close()
    linear.close()


def spot_conn_id(sim: BybitSim, channel: str) -> str:
    conn = next(c for c in sim.connections() if c["channel"] == channel)
    return f"sim{conn['id']:06d}-{channel}"


def test_same_seed_same_market() -> None:
    books = []
    for _ in range(2):
        sim = BybitSim(seed=11, levels=20)
        sim.step(25)
        books.append((sim.book("spot", "ETHUSDT"), sim.book("linear", "ETHUSDT")))
    assert books[0] == books[1]


def test_instruments_filter_on_status_and_base_coin(bybit: BybitSim) -> None:
    url = f"{bybit.rest_url}/v5/market/instruments-info"

    def symbols(**params: str) -> list[str]:
        body = httpx.get(url, params=params).json()
        assert body["retCode"] == 0, body
        return [i["symbol"] for i in body["result"]["list"]]

    everything = symbols(category="linear")
    assert "BTCUSDT" in everything
    # Every simulated instrument trades: the default and status=Trading list them all, other
    # statuses nothing (a client merging PreLaunch markets must not get duplicates).
    assert symbols(category="linear", status="Trading") == everything
    assert symbols(category="linear", status="PreLaunch") == []
    assert symbols(category="spot", baseCoin="BTC") == ["BTCUSDT"]
