"""REST endpoints over real HTTP, compared with the reference payloads' keys and types."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from exconn.sim import BinanceSpotSim
from tests.sim.conftest import SimFactory
from tests.sim.helpers import WIRE_NUMBER, load, same_shape


def get(sim: BinanceSpotSim, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{sim.rest_url}{path}", params=params, timeout=10)


def test_ping_and_time(sim: BinanceSpotSim, payloads: Path) -> None:
    assert get(sim, "/api/v3/ping").json() == {}
    body = get(sim, "/api/v3/time").json()
    assert body.keys() == load(payloads, "binance_spot_rest_time.json").keys()
    assert isinstance(body["serverTime"], int) and body["serverTime"] > 1_600_000_000_000


def test_depth_shape_limit_and_book(sim: BinanceSpotSim, payloads: Path) -> None:
    response = get(sim, "/api/v3/depth", symbol="BTCUSDT", limit=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    reference = load(payloads, "binance_spot_rest_depth.json")
    assert body.keys() == reference.keys()
    assert isinstance(body["lastUpdateId"], int)
    assert len(body["bids"]) == len(body["asks"]) == 5
    for price, qty in body["bids"] + body["asks"]:
        assert WIRE_NUMBER.match(price) and WIRE_NUMBER.match(qty)
    update_id, bids, asks = sim.book("BTCUSDT")
    assert body["lastUpdateId"] == update_id == sim.last_update_id("BTCUSDT")
    assert bids[:5] == [(Decimal(p), Decimal(q)) for p, q in body["bids"]]
    assert asks[:5] == [(Decimal(p), Decimal(q)) for p, q in body["asks"]]
    prices = [float(p) for p, _ in body["bids"]]
    assert prices == sorted(prices, reverse=True), "bids best first"
    assert float(body["bids"][0][0]) < float(body["asks"][0][0])
    full = get(sim, "/api/v3/depth", symbol="BTCUSDT").json()
    assert len(full["bids"]) == 50, "default limit 100 covers the whole 50-level book"


def test_depth_errors(sim: BinanceSpotSim, payloads: Path) -> None:
    response = get(sim, "/api/v3/depth", symbol="NOPE")
    assert response.status_code == 400
    assert response.json() == load(payloads, "binance_spot_rest_error.json")
    missing = get(sim, "/api/v3/depth")
    assert missing.status_code == 400 and missing.json()["code"] == -1102
    bad_limit = get(sim, "/api/v3/depth", symbol="BTCUSDT", limit="abc")
    assert bad_limit.status_code == 400 and bad_limit.json()["code"] == -1100


def test_weight_header_counts_per_minute(sim: BinanceSpotSim) -> None:
    first = int(get(sim, "/api/v3/ping").headers["X-MBX-USED-WEIGHT-1M"])
    after_depth = int(
        get(sim, "/api/v3/depth", symbol="BTCUSDT", limit=1000).headers["X-MBX-USED-WEIGHT-1M"]
    )
    # A minute boundary may reset the bucket in between; then only the depth weight counts.
    assert after_depth in (first + 50, 50)
    assert sim.stats()["rest_requests"] >= 2


def test_exchange_info_shape(sim: BinanceSpotSim, payloads: Path) -> None:
    body = get(sim, "/api/v3/exchangeInfo").json()
    reference = load(payloads, "binance_spot_rest_exchangeInfo.json")
    same_shape(body, reference)
    assert body.keys() == reference.keys()
    assert [s["symbol"] for s in body["symbols"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    limits = {(r["rateLimitType"], r["interval"], r["intervalNum"]): r["limit"]
              for r in body["rateLimits"]}
    assert limits == {
        ("REQUEST_WEIGHT", "MINUTE", 1): 6000, ("ORDERS", "SECOND", 10): 50,
        ("ORDERS", "DAY", 1): 160000, ("RAW_REQUESTS", "MINUTE", 5): 300000,
    }
    for limit in body["rateLimits"]:
        same_shape(limit, reference["rateLimits"][0])
    ref_symbol = reference["symbols"][0]
    ref_filters = {f["filterType"]: f for f in ref_symbol["filters"]}
    for symbol in body["symbols"]:
        same_shape(symbol, ref_symbol)
        assert symbol["status"] == "TRADING"
        assert symbol["permissionSets"] == [["SPOT"]]
        assert isinstance(symbol["allowedSelfTradePreventionModes"], list)
        filters = {f["filterType"]: f for f in symbol["filters"]}
        assert {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL"} <= filters.keys()
        for kind in filters.keys() & ref_filters.keys():
            assert filters[kind].keys() == ref_filters[kind].keys(), kind
            same_shape(filters[kind], ref_filters[kind])
        assert set(filters["NOTIONAL"]) == {
            "filterType", "minNotional", "applyMinToMarket", "maxNotional", "applyMaxToMarket",
            "avgPriceMins",
        }
    btc = body["symbols"][0]
    btc_filters = {f["filterType"]: f for f in btc["filters"]}
    assert btc_filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert btc_filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert btc_filters["NOTIONAL"]["minNotional"] == "5.00000000"


def test_exchange_info_symbol_filters(sim: BinanceSpotSim) -> None:
    one = get(sim, "/api/v3/exchangeInfo", symbol="ETHUSDT").json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    two = get(sim, "/api/v3/exchangeInfo", symbols='["SOLUSDT","BTCUSDT"]').json()
    assert [s["symbol"] for s in two["symbols"]] == ["SOLUSDT", "BTCUSDT"]
    bad = get(sim, "/api/v3/exchangeInfo", symbol="NOPE")
    assert bad.status_code == 400 and bad.json() == {"code": -1121, "msg": "Invalid symbol."}
    garbled = get(sim, "/api/v3/exchangeInfo", symbols="[BTCUSDT")
    assert garbled.status_code == 400 and garbled.json()["code"] == -1100


def test_simulators_run_side_by_side(make_sim: SimFactory) -> None:
    a, b = make_sim(seed=1), make_sim(seed=2)
    assert a.rest_url != b.rest_url
    assert a.rest_url.startswith("http://127.0.0.1:") and a.ws_url.startswith("ws://127.0.0.1:")
    for s in (a, b):
        assert get(s, "/api/v3/ping").status_code == 200
