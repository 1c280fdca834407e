"""ccxt, a Binance client none of us wrote, against BinanceSpotSim through URL overrides only.

Acceptance: loads markets, fetches an order book (equal to the simulator's), places a limit
order away from the market, sees it in open orders, cancels it, and a marketable order fills
with the balance changing by the fill's quantity, cost and fee.

ccxt configuration, each setting something a real user could set too:
* `urls['api']`: every entry (public, private, v1, sapi*, fapi*, dapi*, eapi*, papi*) keeps
  its path and points at the simulator's host; `SimOnlyBinance.fetch` additionally refuses
  any URL that is not the simulator's, so a URL ccxt builds some other way fails the test
  instead of reaching the internet.
* `timeout` 3000 ms: a request that somehow went elsewhere fails fast instead of hanging.
* `options['defaultType'] = 'spot'` (ccxt's default, set so the test does not depend on it):
  unified calls without a market go to the spot API.
* `options['fetchMarkets']['types'] = ['spot']`: ccxt's default also loads USD-M (`fapi`)
  and COIN-M (`dapi`) markets, other hosts that this simulator does not serve (USD-M is
  `BinanceUsdmSim`, a separate instance).
* `options['fetchMargins'] = False`: otherwise, with keys, load_markets also calls
  `sapi/v1/margin/allPairs` and `margin/isolated/allPairs`; margin is not simulated.
* `options['fetchCurrencies'] = False`: otherwise load_markets first calls the private
  `sapi/v1/capital/config/getall` (deposit/withdraw networks), wallet metadata the simulator
  does not model; ccxt then derives currencies from the markets.
Nothing else is preset: ccxt's own `newClientOrderId` (its broker prefix `x-...`),
`newOrderRespType=FULL`, `recvWindow=10000` and its timestamps reach the simulator exactly as
they would reach Binance.
"""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from exconn.sim import BinanceSpotSim
from tests.sim.ccxt_support import balance, ccxt_levels, to_decimal, top_levels, walk_cost

ccxt = pytest.importorskip("ccxt")

TIMEOUT_MS = 3000
SYMBOL, MARKET_ID = "BTC/USDT", "BTCUSDT"
AMOUNT = Decimal("0.01")
FEE_RATE = Decimal("0.001")  # Binance spot VIP 0, what the simulator charges (asset received)
EIGHT_DP = Decimal("0.00000001")


class SimOnlyBinance(ccxt.binance):  # type: ignore[misc]  # importorskip gives an untyped module
    """ccxt's binance, refusing to send anything anywhere but the simulator."""

    sim_base = ""

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        if not self.sim_base or not url.startswith(self.sim_base + "/"):
            raise AssertionError(f"ccxt tried to leave the simulator: {method} {url}")
        return super().fetch(url, method, headers, body)


@pytest.fixture
def sim() -> Iterator[BinanceSpotSim]:
    """Paused, so the book only changes through the test's own orders."""
    s = BinanceSpotSim(seed=7, depth_interval_ms=20, levels=60)
    s.start()
    try:
        s.pause()
        yield s
    finally:
        s.stop()


def _sim_url(rest_url: str, real_url: str) -> str:
    """`https://api.binance.com/api/v3` -> `<rest_url>/api/v3`: same path, simulator host."""
    path = real_url.split("://", 1)[1].partition("/")[2]
    return f"{rest_url}/{path}"


def _client(sim: BinanceSpotSim, secret: str | None = None) -> Any:
    """ccxt.binance on account 0's HMAC key (or a wrong `secret`), configured as above."""
    keys = sim.api_keys(0)
    ex = SimOnlyBinance(
        {"apiKey": keys.hmac_key, "secret": secret or keys.hmac_secret, "timeout": TIMEOUT_MS}
    )
    ex.sim_base = sim.rest_url
    for name, url in list(ex.urls["api"].items()):
        ex.urls["api"][name] = _sim_url(sim.rest_url, url)
    ex.options["defaultType"] = "spot"
    ex.options["fetchMarkets"]["types"] = ["spot"]
    ex.options["fetchMargins"] = False
    ex.options["fetchCurrencies"] = False
    return ex


@pytest.fixture
def exchange(sim: BinanceSpotSim) -> Any:
    return _client(sim)


def _load_markets(ex: Any) -> None:
    markets = ex.load_markets()
    assert set(markets) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    market = markets[SYMBOL]
    assert market["id"] == MARKET_ID and market["spot"] and market["active"]
    assert to_decimal(market["precision"]["price"]) == Decimal("0.01")
    assert to_decimal(market["precision"]["amount"]) == Decimal("0.00001")
    assert to_decimal(market["limits"]["cost"]["min"]) == Decimal(5)


Levels = list[tuple[Decimal, Decimal]]


def _order_book(ex: Any, sim: BinanceSpotSim) -> tuple[Levels, Levels]:
    """ccxt's book equals the simulator's; returns the simulator's (bids, asks)."""
    book = ex.fetch_order_book(SYMBOL, 25)
    update_id, bids, asks = sim.book(MARKET_ID)
    assert book["nonce"] == update_id  # paused: nothing moved in between
    assert ccxt_levels(book["bids"]) == top_levels(bids, 25)
    assert ccxt_levels(book["asks"]) == top_levels(asks, 25)
    return bids, asks


def _limit_open_cancel(ex: Any, best_bid: Decimal) -> None:
    """A buy 5 % under the best bid rests (locking its quote), is listed open, and cancels."""
    usdt0, used0 = balance(ex, "USDT")
    price = Decimal(ex.price_to_precision(SYMBOL, float(best_bid * Decimal("0.95"))))
    order = ex.create_order(SYMBOL, "limit", "buy", float(AMOUNT), float(price))
    assert order["id"] and order["status"] == "open" and to_decimal(order["filled"]) == 0
    assert order["clientOrderId"].startswith("x-")  # ccxt's broker-prefixed id was accepted
    listed = {o["id"]: o for o in ex.fetch_open_orders(SYMBOL)}
    assert set(listed) == {order["id"]}
    seen = listed[order["id"]]
    assert seen["side"] == "buy" and seen["type"] == "limit" and seen["status"] == "open"
    assert to_decimal(seen["price"]) == price and to_decimal(seen["amount"]) == AMOUNT
    assert seen["clientOrderId"] == order["clientOrderId"]
    assert balance(ex, "USDT") == (usdt0, used0 + price * AMOUNT)

    canceled = ex.cancel_order(order["id"], SYMBOL)
    assert canceled["id"] == order["id"] and canceled["status"] == "canceled"
    assert ex.fetch_open_orders(SYMBOL) == []
    assert balance(ex, "USDT") == (usdt0, used0)  # the cancel released the lock
    # Binance's -2011 "Unknown order sent." is what ccxt maps to OrderNotFound.
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(order["id"], SYMBOL)


def _market_fill(ex: Any, side: str, levels: Levels) -> tuple[dict[str, Any], Decimal]:
    """A market order for AMOUNT: filled at once, at the quote the published book implies."""
    quote = walk_cost(levels, AMOUNT)
    order = ex.create_order(SYMBOL, "market", side, float(AMOUNT))
    assert order["status"] == "closed" and order["side"] == side
    assert to_decimal(order["filled"]) == AMOUNT and to_decimal(order["remaining"]) == 0
    assert to_decimal(order["cost"]) == quote
    return order, quote


def test_ccxt_spot_round_trip(sim: BinanceSpotSim, exchange: Any) -> None:
    ex = exchange
    _load_markets(ex)
    assert abs(ex.load_time_difference()) < 5000  # /api/v3/time (adjustForTimeDifference)
    bids, asks = _order_book(ex, sim)
    btc0, _ = balance(ex, "BTC")
    usdt0, _ = balance(ex, "USDT")

    _limit_open_cancel(ex, bids[0][0])

    # Buy at market: pays the walked asks in USDT, receives BTC less the fee (in BTC).
    buy, cost = _market_fill(ex, "buy", asks)
    buy_fee = (AMOUNT * FEE_RATE).quantize(EIGHT_DP)
    assert buy["fee"]["currency"] == "BTC" and to_decimal(buy["fee"]["cost"]) == buy_fee
    btc1, _ = balance(ex, "BTC")
    usdt1, _ = balance(ex, "USDT")
    assert usdt0 - usdt1 == cost
    assert btc1 - btc0 == AMOUNT - buy_fee

    # Sell it back at market: the bids were untouched by the buy (the market is paused).
    sell, proceeds = _market_fill(ex, "sell", bids)
    sell_fee = to_decimal(sell["fee"]["cost"])
    assert sell["fee"]["currency"] == "USDT"
    assert abs(sell_fee - proceeds * FEE_RATE) < EIGHT_DP
    btc2, _ = balance(ex, "BTC")
    usdt2, _ = balance(ex, "USDT")
    assert btc1 - btc2 == AMOUNT
    assert usdt2 - usdt1 == proceeds - sell_fee

    trades = ex.fetch_my_trades(SYMBOL)
    for order, side in ((buy, "buy"), (sell, "sell")):
        own = [t for t in trades if t["order"] == order["id"]]
        assert own and all(t["side"] == side and t["takerOrMaker"] == "taker" for t in own)
        assert sum(to_decimal(t["amount"]) for t in own) == AMOUNT
    # fetch_closed_orders reads /api/v3/allOrders: the two fills (the canceled one is not
    # "closed" in ccxt's terms) and fetch_canceled_orders the limit order.
    closed = {o["id"]: o["status"] for o in ex.fetch_closed_orders(SYMBOL)}
    assert closed == {buy["id"]: "closed", sell["id"]: "closed"}
    assert [o["status"] for o in ex.fetch_canceled_orders(SYMBOL)] == ["canceled"]


def test_ccxt_rejections_map_to_ccxt_errors(sim: BinanceSpotSim, exchange: Any) -> None:
    """Binance's error bodies reach ccxt's error mapping unchanged."""
    ex = exchange
    ex.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):  # -2010 insufficient balance
        ex.create_order(SYMBOL, "limit", "buy", 100, 59_000)
    # ccxt chooses its per-market-type error table by host (api.binance.com), which the
    # simulator's 127.0.0.1 does not match, so -1013 lands in ccxt's generic table.
    with pytest.raises(ccxt.BadRequest, match='"code":-1013,"msg":"Filter failure: NOTIONAL"'):
        ex.create_order(SYMBOL, "limit", "buy", 0.00001, 50_000)
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):  # signature not valid
        _client(sim, secret="x" * 64).fetch_balance()
    last = {t["symbol"]: to_decimal(t["price"]) for t in ex.fetch_last_prices().values()}
    assert set(last) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
