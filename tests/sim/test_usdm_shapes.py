"""Shape conformance: the simulator produces every USD-M reference payload it can, with
the same keys and JSON types (values may differ).

Not produced, and why:
* binance_usdm_user_ALGO_UPDATE.json — conditional (algo) orders (/fapi/v1/algoOrder) are
  not simulated; plain orders of those types are refused with -4120.
* binance_usdm_user_TRADE_LITE.json — the TRADE_LITE event is not emitted (the sim sends
  the full ORDER_TRADE_UPDATE for every fill).
* binance_usdm_user_ORDER_TRADE_UPDATE_new.json — a TRAILING_STOP_MARKET order (algo); the
  NEW event of a LIMIT order is checked against the same keys here instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exconn.sim import BinanceUsdmSim
from tests.conftest import REFERENCE, require_shared
from tests.sim import test_usdm_helpers as helpers
from tests.sim.test_usdm_helpers import Rest, Ws

make_usdm, rest, usdm = helpers.make_usdm, helpers.rest, helpers.usdm  # fixtures


@pytest.fixture
def ref() -> Path:
    return require_shared(REFERENCE / "payloads")


def load(ref: Path, name: str) -> Any:
    return json.loads((ref / f"binance_usdm_{name}.json").read_text())


def same_shape(ours: Any, theirs: Any, where: str = "") -> None:
    """Every reference key present with the same JSON type, recursively."""
    assert type(ours) is type(theirs), f"{where}: {ours!r} vs {theirs!r}"
    if isinstance(theirs, dict):
        for key, value in theirs.items():
            assert key in ours, f"{where}: missing {key!r}"
            same_shape(ours[key], value, f"{where}.{key}")
    elif isinstance(theirs, list) and theirs and ours:
        same_shape(ours[0], theirs[0], f"{where}[0]")


def test_rest_shapes(usdm: BinanceUsdmSim, rest: Rest, ref: Path) -> None:
    usdm.step(5)
    info = rest.public("/fapi/v1/exchangeInfo").json()
    reference = load(ref, "rest_exchangeInfo")
    same_shape(
        {k: v for k, v in info.items() if k != "symbols"},
        {k: v for k, v in reference.items() if k != "symbols"},
    )
    ours = info["symbols"][0]
    theirs = reference["symbols"][0]
    same_shape(
        {k: v for k, v in ours.items() if k != "filters"},
        {k: v for k, v in theirs.items() if k != "filters"},
    )
    by_type = {f["filterType"]: f for f in ours["filters"]}
    for f in theirs["filters"]:
        same_shape(by_type[f["filterType"]], f)
    same_shape(
        rest.public("/fapi/v1/depth", symbol="BTCUSDT", limit=5).json(), load(ref, "rest_depth")
    )
    order = rest.order(
        side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.003", price="50000.00"
    ).json()
    same_shape(order, load(ref, "rest_order"))
    rest.order(side="BUY", type="MARKET", quantity="0.003")
    same_shape(
        rest.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT").json(),
        load(ref, "rest_positionRisk_v2"),
    )
    rest.signed("DELETE", "/fapi/v1/allOpenOrders", symbol="BTCUSDT")
    rest.order(side="SELL", type="MARKET", quantity="0.003", reduceOnly="true")
    switched = rest.signed("POST", "/fapi/v1/positionSide/dual", dualSidePosition="true")
    assert switched.status_code == 200, switched.text
    same_shape(
        rest.signed("GET", "/fapi/v1/positionSide/dual").json(), load(ref, "rest_positionSide_dual")
    )
    hedge = rest.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT").json()
    reference_hedge = load(ref, "rest_positionRisk_hedge")
    assert [p["positionSide"] for p in hedge] == [p["positionSide"] for p in reference_hedge]
    same_shape(hedge, reference_hedge)


def test_stream_shapes(usdm: BinanceUsdmSim, ref: Path) -> None:
    public = Ws(f"{usdm.ws_url}/public/stream?streams=btcusdt@depth/btcusdt@bookTicker")
    market = Ws(
        f"{usdm.ws_url}/market/stream?streams="
        "btcusdt@aggTrade/btcusdt@markPrice@1s/btcusdt@kline_1m"
    )
    try:
        assert usdm.wait_for_connections(2, 10)
        usdm.step(60)
        wanted = {"btcusdt@depth": "ws_depthUpdate", "btcusdt@bookTicker": "ws_bookTicker"}
        seen = _collect(public, wanted)
        same_shape(seen["btcusdt@depth"], load(ref, "ws_depthUpdate_recorded"))
        wanted_market = {
            "btcusdt@aggTrade": "ws_aggTrade",
            "btcusdt@markPrice@1s": "ws_markPriceUpdate",
            "btcusdt@kline_1m": "ws_kline",
        }
        seen |= _collect(market, wanted_market)
        for stream, name in (wanted | wanted_market).items():
            same_shape(seen[stream], load(ref, name), stream)
    finally:
        public.close()
        market.close()


def _collect(ws: Ws, wanted: dict[str, str]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for _ in range(2000):
        if set(wanted) <= set(seen):
            return seen
        msg = ws.json()
        seen.setdefault(msg["stream"], msg["data"])
    raise AssertionError(f"missing streams: {set(wanted) - set(seen)}")


def test_user_event_shapes(usdm: BinanceUsdmSim, rest: Rest, ref: Path) -> None:
    key = rest.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
    ws = Ws(f"{usdm.ws_url}/private/ws?listenKey={key}")
    try:
        assert usdm.wait_for_connections(1, 10)
        rest.order(side="BUY", type="MARKET", quantity="0.003")
        new = ws.json()
        trade = ws.json()
        account = ws.json()
        reference_new = load(ref, "user_ORDER_TRADE_UPDATE_new")
        same_shape(new, reference_new)
        assert new["o"]["x"] == "NEW"
        same_shape(trade, load(ref, "user_ORDER_TRADE_UPDATE_trade"))
        assert trade["o"]["x"] == "TRADE"
        same_shape(account, load(ref, "user_ACCOUNT_UPDATE"))
    finally:
        ws.close()
