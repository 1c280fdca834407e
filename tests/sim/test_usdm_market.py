"""USD-M market data: REST endpoints, routed streams, and the documented book procedure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exconn.sim import BinanceUsdmSim
from tests.sim import test_usdm_helpers as helpers
from tests.sim.test_usdm_helpers import Rest, Ws

Book = dict[str, dict[Decimal, Decimal]]

make_usdm, rest, usdm = helpers.make_usdm, helpers.rest, helpers.usdm  # fixtures


def test_rest_market_endpoints(usdm: BinanceUsdmSim, rest: Rest) -> None:
    usdm.step(30)
    assert rest.public("/fapi/v1/ping").json() == {}
    info = rest.public("/fapi/v1/exchangeInfo").json()
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    depth = rest.public("/fapi/v1/depth", symbol="BTCUSDT", limit=10)
    assert depth.status_code == 200 and depth.headers["X-MBX-USED-WEIGHT-1M"]
    body = depth.json()
    assert body["lastUpdateId"] == usdm.last_update_id("BTCUSDT")
    assert len(body["bids"]) == 10 and {"E", "T"} <= body.keys()
    assert rest.public("/fapi/v1/depth", symbol="NOPE").json()["code"] == -1121
    assert rest.public("/fapi/v1/depth").json()["code"] == -1102
    assert rest.public("/fapi/v1/trades", symbol="BTCUSDT", limit=5).status_code == 200
    klines = rest.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=3).json()
    assert 1 <= len(klines) <= 3 and len(klines[0]) == 12
    assert rest.public("/fapi/v1/klines", symbol="BTCUSDT", interval="7m").json()["code"] == -1120
    premium = rest.public("/fapi/v1/premiumIndex", symbol="BTCUSDT").json()
    assert premium["symbol"] == "BTCUSDT" and Decimal(premium["markPrice"]) > 0
    ticker = rest.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT").json()
    _, bids, asks = usdm.book("BTCUSDT")
    assert Decimal(ticker["bidPrice"]) == bids[0][0] and Decimal(ticker["askPrice"]) == asks[0][0]


def _apply(book: Book, event: dict[str, Any]) -> None:
    for side, key in (("bids", "b"), ("asks", "a")):
        for price, qty in event[key]:
            if Decimal(qty) == 0:
                book[side].pop(Decimal(price), None)
            else:
                book[side][Decimal(price)] = Decimal(qty)


def _sync(rest: Rest, ws: Ws, sim: BinanceUsdmSim, steps: int) -> tuple[Book, int, list[int]]:
    """binance.md §7.2: buffer, snapshot, drop u < lastUpdateId, bridge, then pu chain."""
    sim.step(3)
    buffered = [ws.json()["data"] for _ in range(3)]
    snap = rest.public("/fapi/v1/depth", symbol="BTCUSDT", limit=1000).json()
    last_id = snap["lastUpdateId"]
    book: Book = {
        "bids": {Decimal(p): Decimal(q) for p, q in snap["bids"]},
        "asks": {Decimal(p): Decimal(q) for p, q in snap["asks"]},
    }
    sim.step(steps)
    events = buffered + [ws.json()["data"] for _ in range(steps)]
    events = [e for e in events if e["u"] >= last_id]
    breaks: list[int] = []
    first = events[0]
    assert first["U"] <= last_id <= first["u"]
    prev_u = None
    for event in events:
        if prev_u is not None and event["pu"] != prev_u:
            breaks.append(event["U"])
        _apply(book, event)
        prev_u = event["u"]
    return book, prev_u or last_id, breaks


def test_client_rebuilds_the_book_with_pu_chain(usdm: BinanceUsdmSim, rest: Rest) -> None:
    ws = Ws(f"{usdm.ws_url}/public/stream?streams=btcusdt@depth@100ms")
    try:
        assert usdm.wait_for_connections(1, 10)
        book, last_u, breaks = _sync(rest, ws, usdm, steps=40)
        assert breaks == []
        update_id, bids, asks = usdm.book("BTCUSDT")
        assert last_u == update_id
        assert sorted(book["bids"].items(), reverse=True) == bids
        assert sorted(book["asks"].items()) == asks
    finally:
        ws.close()


def test_skip_sequence_breaks_the_pu_chain(usdm: BinanceUsdmSim, rest: Rest) -> None:
    ws = Ws(f"{usdm.ws_url}/public/ws/btcusdt@depth")
    try:
        assert usdm.wait_for_connections(1, 10)
        usdm.step(2)
        first, second = ws.json(), ws.json()
        assert second["pu"] == first["u"]
        usdm.skip_sequence("BTCUSDT")
        usdm.step(2)
        after = ws.json()
        assert after["pu"] != second["u"] and after["pu"] > second["u"]
        assert usdm.stats()["depth_events_skipped"] == 1
    finally:
        ws.close()


def test_routed_paths_and_wrong_route_is_silent(usdm: BinanceUsdmSim) -> None:
    # markPrice on /public and depth on /market are accepted and stay silent.
    wrong = Ws(f"{usdm.ws_url}/public/ws/btcusdt@markPrice@1s/btcusdt@depth")
    market = Ws(f"{usdm.ws_url}/market/stream?streams=btcusdt@markPrice@1s/btcusdt@depth")
    try:
        assert usdm.wait_for_connections(2, 10)
        usdm.step(110)  # two markPrice@1s events at 20 ms intervals
        seen_public = {wrong.json()["e"] for _ in range(100)}
        assert seen_public == {"depthUpdate"}
        seen_market = {market.json()["stream"] for _ in range(2)}
        assert seen_market == {"btcusdt@markPrice@1s"}
    finally:
        wrong.close()
        market.close()


def test_control_messages(usdm: BinanceUsdmSim) -> None:
    ws = Ws(f"{usdm.ws_url}/public/ws")
    try:
        ws.ws.send('{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":1}')
        assert ws.json() == {"result": None, "id": 1}
        ws.ws.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
        assert ws.json() == {"result": ["btcusdt@bookTicker"], "id": 2}
        usdm.step(20)
        assert ws.until(lambda m: m.get("e") == "bookTicker")["s"] == "BTCUSDT"
    finally:
        ws.close()


def test_same_seed_same_market(make_usdm: Any) -> None:
    a, b = make_usdm(seed=11), make_usdm(seed=11)
    a.step(50)
    b.step(50)
    assert a.book("BTCUSDT") == b.book("BTCUSDT")
    c = make_usdm(seed=12)
    c.step(50)
    assert c.book("BTCUSDT") != a.book("BTCUSDT")
