"""ccxt, a Bybit client none of us wrote, against BybitSim through URL overrides only.

Acceptance: loads markets, fetches an order book (equal to the simulator's), places a limit
order away from the market, sees it in open orders, cancels it, and a marketable order fills
with the balance (spot) or position and wallet (linear) changing accordingly.

ccxt configuration, each setting something a real user could set too:
* `urls['api']`: every entry (spot, futures, v2, public, private) points at the simulator;
  `SimOnlyBybit.fetch` additionally refuses any URL that is not the simulator's, so a URL
  ccxt builds some other way fails the test instead of reaching the internet.
* `timeout` 3000 ms: a request that somehow went elsewhere fails fast instead of hanging.
* `options['fetchMarkets']['types'] = ['spot', 'linear']`: ccxt's default also loads inverse
  and option markets (BTC/ETH/SOL/... option chains); the simulator serves only spot and
  linear (docs/simulator.md, "Not served: option/inverse").
* `has['fetchCurrencies'] = False`: otherwise load_markets first calls the private
  `/v5/asset/coin/query-info` (deposit/withdraw networks), wallet metadata the simulator
  does not model; ccxt then derives currencies from the markets.
Nothing else is preset: in particular ccxt discovers the unified account itself through
`/v5/user/query-api` and `/v5/account/info`, as it would against the real venue.
"""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from exconn.sim import BybitSim
from tests.sim.ccxt_support import balance, ccxt_levels, to_decimal, top_levels, walk_cost

ccxt = pytest.importorskip("ccxt")

TIMEOUT_MS = 3000
AMOUNT = Decimal("0.01")
SPOT_FEE = Decimal("0.001")  # Bybit spot VIP 0, what the simulator charges
LINEAR_TAKER_FEE = Decimal("0.00055")
LEVERAGE = 10  # the simulator's default linear leverage


class SimOnlyBybit(ccxt.bybit):  # type: ignore[misc]  # importorskip gives an untyped module
    """ccxt's bybit, refusing to send anything anywhere but the simulator."""

    sim_base = ""

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        if not self.sim_base or not url.startswith(self.sim_base + "/"):
            raise AssertionError(f"ccxt tried to leave the simulator: {method} {url}")
        return super().fetch(url, method, headers, body)


@pytest.fixture
def sim() -> Iterator[BybitSim]:
    """Paused, so the book only changes through the test's own orders."""
    s = BybitSim(seed=7, depth_interval_ms=20, levels=60)
    s.start()
    try:
        s.pause()
        yield s
    finally:
        s.stop()


@pytest.fixture
def exchange(sim: BybitSim) -> Any:
    key, secret = sim.api_keys()[0]
    ex = SimOnlyBybit({"apiKey": key, "secret": secret, "timeout": TIMEOUT_MS})
    ex.sim_base = sim.rest_url
    for name in list(ex.urls["api"]):
        ex.urls["api"][name] = sim.rest_url
    ex.options["fetchMarkets"]["types"] = ["spot", "linear"]
    ex.has["fetchCurrencies"] = False
    return ex


def _load_and_compare_book(
    ex: Any, sim: BybitSim, symbol: str, category: str, market_id: str
) -> list[tuple[Decimal, Decimal]]:
    markets = ex.load_markets()
    market = markets[symbol]
    assert market["id"] == market_id and market["active"]
    assert market["spot" if category == "spot" else "swap"]
    book = ex.fetch_order_book(symbol, 25)
    _, bids, asks = sim.book(category, market_id)
    assert ccxt_levels(book["bids"]) == top_levels(bids, 25)
    assert ccxt_levels(book["asks"]) == top_levels(asks, 25)
    assert book["timestamp"] is not None
    return asks


def _limit_open_cancel(ex: Any, sim: BybitSim, symbol: str, category: str) -> None:
    """A buy 5 % under the best bid rests, is listed open, and cancels."""
    _, bids, _ = sim.book(category, symbol.split("/")[0] + "USDT")
    price = ex.price_to_precision(symbol, float(bids[0][0] * Decimal("0.95")))
    order = ex.create_order(symbol, "limit", "buy", float(AMOUNT), float(price))
    assert order["id"]
    listed = {o["id"]: o for o in ex.fetch_open_orders(symbol)}
    assert order["id"] in listed
    seen = listed[order["id"]]
    assert seen["side"] == "buy" and seen["type"] == "limit" and seen["status"] == "open"
    assert to_decimal(seen["price"]) == Decimal(price) and to_decimal(seen["amount"]) == AMOUNT
    ex.cancel_order(order["id"], symbol)
    assert order["id"] not in {o["id"] for o in ex.fetch_open_orders(symbol)}


def test_ccxt_spot_round_trip(sim: BybitSim, exchange: Any) -> None:
    ex = exchange
    asks = _load_and_compare_book(ex, sim, "BTC/USDT", "spot", "BTCUSDT")
    btc0, _ = balance(ex, "BTC")
    usdt0, used0 = balance(ex, "USDT")

    _limit_open_cancel(ex, sim, "BTC/USDT", "spot")
    assert balance(ex, "USDT") == (usdt0, used0)  # the cancel released the lock

    cost = walk_cost(asks, AMOUNT)
    order = ex.create_order("BTC/USDT", "market", "buy", float(AMOUNT))
    assert order["id"]
    btc1, _ = balance(ex, "BTC")
    usdt1, _ = balance(ex, "USDT")
    assert usdt0 - usdt1 == cost
    assert btc1 - btc0 == AMOUNT * (1 - SPOT_FEE)  # spot buy fees are taken in the base coin
    trades = ex.fetch_my_trades("BTC/USDT")
    assert sum(to_decimal(t["amount"]) for t in trades if t["order"] == order["id"]) == AMOUNT


def test_ccxt_linear_round_trip(sim: BybitSim, exchange: Any) -> None:
    ex = exchange
    symbol = "BTC/USDT:USDT"
    asks = _load_and_compare_book(ex, sim, symbol, "linear", "BTCUSDT")
    market = ex.market(symbol)
    assert market["linear"] and market["settle"] == "USDT"
    usdt0, used0 = balance(ex, "USDT")

    _limit_open_cancel(ex, sim, symbol, "linear")
    assert balance(ex, "USDT") == (usdt0, used0)

    cost = walk_cost(asks, AMOUNT)
    order = ex.create_order(symbol, "market", "buy", float(AMOUNT))
    assert order["id"]
    positions = [p for p in ex.fetch_positions([symbol]) if p["contracts"]]
    assert len(positions) == 1
    pos = positions[0]
    assert pos["symbol"] == symbol and pos["side"] == "long"
    assert to_decimal(pos["contracts"]) == AMOUNT
    assert to_decimal(pos["entryPrice"]) == cost / AMOUNT
    usdt1, used1 = balance(ex, "USDT")
    # only the fee leaves the wallet; balances are kept to 1e-8, so the fee is rounded there
    assert abs((usdt0 - usdt1) - cost * LINEAR_TAKER_FEE) < Decimal("1e-8")
    assert used1 - used0 == cost / LEVERAGE  # the position's initial margin


def test_a_url_outside_the_simulator_fails_fast(sim: BybitSim) -> None:
    """The guard itself: without the overrides ccxt would go to api.bybit.com; it must fail
    (before any network I/O), not hang or reach the internet."""
    ex = SimOnlyBybit({"timeout": TIMEOUT_MS})
    ex.sim_base = sim.rest_url
    with pytest.raises(AssertionError, match="leave the simulator"):
        ex.fetch_time()
