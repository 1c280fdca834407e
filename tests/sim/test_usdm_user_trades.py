"""USD-M ``GET /fapi/v1/userTrades`` (binance.md §8: signed, weight 5): the account's own
fills with the ids the user stream carries, and the symbol / orderId / fromId / time-window
/ limit rules of the Account Trade List."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from exconn.sim import BinanceUsdmSim
from tests.sim import test_usdm_helpers as helpers
from tests.sim.test_usdm_helpers import ManualClock, Rest, Ws

make_usdm = helpers.make_usdm  # fixture
DAY_MS = 24 * 3600 * 1000
WEIGHT = "X-MBX-USED-WEIGHT-1M"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(make_usdm: Any, clock: ManualClock) -> BinanceUsdmSim:
    # A manual clock: the weight window and the trades' times move only when the test says.
    return make_usdm(clock=clock)


@pytest.fixture
def rest(sim: BinanceUsdmSim, clock: ManualClock) -> Iterator[Rest]:
    key, secret = sim.api_keys()[0]
    client = Rest(sim, key, secret, clock)
    try:
        yield client
    finally:
        client.close()


def _trades(rest: Rest, **params: Any) -> Any:
    params.setdefault("symbol", "BTCUSDT")
    return rest.signed("GET", "/fapi/v1/userTrades", **params).json()


def _ask(rest: Rest) -> tuple[Decimal, Decimal]:
    t = rest.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT").json()
    return Decimal(t["askPrice"]), Decimal(t["askQty"])


def _partial_then_filled(sim: BinanceUsdmSim, rest: Rest) -> tuple[dict[str, Any], Decimal]:
    """A buy larger than the best ask: one taker fill, then the rest filled as maker by a
    second account's sell. Returns the order as placed and its full quantity."""
    ask, ask_qty = _ask(rest)
    qty = ask_qty + Decimal("0.005")
    placed = rest.order(
        side="BUY", type="LIMIT", timeInForce="GTC", quantity=str(qty), price=str(ask)
    ).json()
    assert placed["status"] == "PARTIALLY_FILLED", placed
    key, secret = sim.add_account()
    other = Rest(sim, key, secret, rest.clock)
    try:
        sold = other.order(
            side="SELL", type="LIMIT", timeInForce="IOC", quantity="0.005", price=str(ask)
        ).json()
        assert sold["status"] == "FILLED", sold
        # The seller's fills are its own: never in this account's list.
        (theirs,) = _trades(other)
        assert theirs["orderId"] == sold["orderId"] and theirs["buyer"] is False
    finally:
        other.close()
    return placed, qty


def test_fills_are_listed_with_the_stream_trade_ids(sim: BinanceUsdmSim, rest: Rest) -> None:
    listen_key = rest.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
    ws = Ws(f"{sim.ws_url}/private/ws?listenKey={listen_key}")
    try:
        assert sim.wait_for_connections(1, 10)
        assert _trades(rest) == []
        placed, qty = _partial_then_filled(sim, rest)
        stream: list[dict[str, Any]] = []
        for _ in range(100):
            msg = ws.json()
            if msg["e"] == "ORDER_TRADE_UPDATE" and msg["o"]["x"] == "TRADE":
                stream.append(msg["o"])
                if msg["o"]["X"] == "FILLED":
                    break
    finally:
        ws.close()
    rows = _trades(rest)
    assert [r["id"] for r in rows] == [e["t"] for e in stream]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert {r["orderId"] for r in rows} == {placed["orderId"]}
    assert sum(Decimal(r["qty"]) for r in rows) == qty
    assert [r["maker"] for r in rows] == [False, True]
    for row, event in zip(rows, stream, strict=True):
        assert row["price"] == event["L"] and row["qty"] == event["l"]
        assert row["commission"] == event["n"] and Decimal(row["commission"]) > 0
        assert row["commissionAsset"] == event["N"] == "USDT"
        assert row["realizedPnl"] == event["rp"]
        assert Decimal(row["quoteQty"]) == Decimal(row["price"]) * Decimal(row["qty"])
        assert row["time"] == event["T"]
        assert row["symbol"] == "BTCUSDT" and row["side"] == "BUY" and row["buyer"] is True
        assert row["positionSide"] == "BOTH"
    assert set(rows[0]) == {
        "symbol", "id", "orderId", "side", "price", "qty", "realizedPnl", "quoteQty",
        "commission", "commissionAsset", "time", "positionSide", "buyer", "maker",
    }  # fmt: skip


def test_filters_and_limits(sim: BinanceUsdmSim, rest: Rest, clock: ManualClock) -> None:
    first, _ = _partial_then_filled(sim, rest)
    clock.advance(2 * DAY_MS)
    second, _ = _partial_then_filled(sim, rest)
    rows = _trades(rest)
    assert len(rows) == 4
    ids = [r["id"] for r in rows]

    assert [r["id"] for r in _trades(rest, orderId=second["orderId"])] == ids[2:]
    assert [r["id"] for r in _trades(rest, fromId=ids[1])] == ids[1:]
    assert [r["id"] for r in _trades(rest, fromId=ids[1], limit=2)] == ids[1:3]
    assert [r["id"] for r in _trades(rest, limit=1)] == ids[-1:], "newest first kept"
    now = clock.now
    assert [r["id"] for r in _trades(rest, startTime=now - DAY_MS)] == ids[2:]
    assert [r["id"] for r in _trades(rest, endTime=now - DAY_MS)] == ids[:2]
    assert _trades(rest, startTime=now - 3 * DAY_MS, endTime=now) == rows

    clock.advance(6 * DAY_MS)  # the first order's fills are now 8 days old
    assert [r["id"] for r in _trades(rest)] == ids[2:], "default window: the last 7 days"
    assert _trades(rest, fromId=ids[0]) == rows, "fromId is not bound to the window"
    assert [r["orderId"] for r in _trades(rest, orderId=first["orderId"])] == []


def test_bad_requests(sim: BinanceUsdmSim, rest: Rest, clock: ManualClock) -> None:
    now = clock.now
    assert _trades(rest, fromId=1, startTime=now - 1000)["code"] == -1128
    assert _trades(rest, startTime=now - 8 * DAY_MS, endTime=now)["code"] == -1127
    assert _trades(rest, limit="x")["code"] == -1100
    assert rest.signed("GET", "/fapi/v1/userTrades").json()["code"] == -1102
    assert _trades(rest, symbol="NOPEUSDT")["code"] == -1121
    unsigned = rest.http.get("/fapi/v1/userTrades", params={"symbol": "BTCUSDT"})
    assert unsigned.status_code in (400, 401) and unsigned.json()["code"] < 0


def test_weight_is_five(sim: BinanceUsdmSim, rest: Rest) -> None:
    before = rest.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")
    after = rest.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")
    assert before.status_code == after.status_code == 200
    assert int(after.headers[WEIGHT]) - int(before.headers[WEIGHT]) == 5
