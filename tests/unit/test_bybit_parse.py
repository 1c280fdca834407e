"""Bybit V5 wire -> model parsing, on payloads shaped as bybit.md and the docs show them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from exconn.messages import BookDelta, BookSnapshot, Kline, MarkPrice, Ticker24h, Trade
from exconn.model.enums import Exchange, Market, OrderSide, OrderType
from exconn.model.instruments import round_price, round_qty, validate_order
from exconn.model.symbols import SymbolMap
from exconn.venues.bybit import parse as P
from exconn.venues.bybit import wire as W

SPOT_INSTRUMENTS = b"""{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[
 {"symbolId":9,"symbol":"BTCUSDT","baseCoin":"BTC","quoteCoin":"USDT","innovation":"0",
  "status":"Trading","marginTrading":"utaOnly","stTag":"0",
  "lotSizeFilter":{"basePrecision":"0.000001","quotePrecision":"0.0000001",
   "minOrderQty":"0.000011","maxOrderQty":"83","minOrderAmt":"5","maxOrderAmt":"8000000",
   "maxLimitOrderQty":"83","maxMarketOrderQty":"41.5","postOnlyMaxLimitOrderSize":"60000"},
  "priceFilter":{"tickSize":"0.1"},"symbolType":""},
 {"symbol":"WEIRD-USDT","baseCoin":"WEIRD-","quoteCoin":"USDT","status":"Trading",
  "lotSizeFilter":{"basePrecision":"1"},"priceFilter":{"tickSize":"0.1"}}]},
 "retExtInfo":{},"time":1760027412300}"""

LINEAR_INSTRUMENTS = b"""{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[
 {"symbol":"BTCUSDT","contractType":"LinearPerpetual","status":"Trading","baseCoin":"BTC",
  "quoteCoin":"USDT","settleCoin":"USDT","priceScale":"2",
  "priceFilter":{"minPrice":"0.10","maxPrice":"1999999.80","tickSize":"0.10"},
  "lotSizeFilter":{"maxOrderQty":"1190.000","minOrderQty":"0.001","qtyStep":"0.001",
   "postOnlyMaxOrderQty":"1190.000","maxMktOrderQty":"500.000","minNotionalValue":"5"},
  "fundingInterval":480},
 {"symbol":"BTC-26DEC25","contractType":"LinearFutures","status":"Trading","baseCoin":"BTC",
  "quoteCoin":"USDT","settleCoin":"USDT",
  "priceFilter":{"tickSize":"0.50"},
  "lotSizeFilter":{"maxOrderQty":"100","minOrderQty":"0.001","qtyStep":"0.001"}},
 {"symbol":"BTCPERP","contractType":"LinearPerpetual","status":"PreLaunch","baseCoin":"BTC",
  "quoteCoin":"USDC","settleCoin":"USDC",
  "priceFilter":{"tickSize":"0.5"},
  "lotSizeFilter":{"maxOrderQty":"100","minOrderQty":"0.001","qtyStep":"0.001",
   "minNotionalValue":"0"}}],"nextPageCursor":""},"retExtInfo":{},"time":1735809771618}"""


def test_spot_instruments_use_base_precision_and_min_order_value() -> None:
    env = W.spot_instruments_decoder.decode(SPOT_INSTRUMENTS)
    (btc,) = P.parse_instruments(env.result, Market.SPOT)  # WEIRD-USDT cannot be a symbol
    assert btc.exchange is Exchange.BYBIT and btc.symbol == "BTC/USDT" and btc.settle is None
    assert btc.venue_symbol == "BTCUSDT" and btc.status == "trading"
    assert btc.tick_size == Decimal("0.1") and btc.step_size == Decimal("0.000001")
    # minOrderQty is deprecated and no longer checked: the minimum is the order value.
    assert btc.min_qty == 0 and btc.min_notional == Decimal("5")
    assert btc.max_qty == Decimal("83")
    # exconn's rounding and validation work on them unchanged.
    assert round_price(btc, Decimal("60000.17"), OrderSide.BUY) == Decimal("60000.1")
    assert round_qty(btc, Decimal("0.0123456789")) == Decimal("0.012345")
    validate_order(btc, OrderSide.BUY, OrderType.LIMIT, Decimal("0.0001"), Decimal("60000.0"))
    with pytest.raises(Exception, match="min_notional"):
        validate_order(btc, OrderSide.BUY, OrderType.LIMIT, Decimal("0.00001"), Decimal("60000"))


def test_linear_instruments_keep_perpetuals_and_name_the_settle_coin() -> None:
    env = W.linear_instruments_decoder.decode(LINEAR_INSTRUMENTS)
    btc, perp = P.parse_instruments(env.result.list, Market.LINEAR)
    assert btc.symbol == "BTC/USDT:USDT" and btc.settle == "USDT"
    assert btc.tick_size == Decimal("0.10") and btc.step_size == Decimal("0.001")
    assert btc.min_qty == Decimal("0.001") and btc.max_qty == Decimal("1190.000")
    assert btc.min_notional == Decimal("5")
    assert perp.symbol == "BTC/USDC:USDC" and perp.venue_symbol == "BTCPERP"
    assert perp.status == "prelaunch" and perp.min_notional is None  # "0": no limit
    mapping = SymbolMap.from_instruments([btc, perp])
    assert mapping.from_venue("BTCPERP") == "BTC/USDC:USDC"
    with pytest.raises(TypeError):
        P.parse_instruments(env.result.list, Market.SPOT)


ORDERBOOK_DELTA = (
    b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT",'
    b'"b":[["30247.20","30.028"],["30240.00","0"]],"a":[["30248.70","0"]],"u":177400507,'
    b'"seq":66544703342},"cts":1687940967464}'
)


def test_orderbook_messages() -> None:
    msg = W.orderbook_decoder.decode(ORDERBOOK_DELTA)
    delta = P.parse_orderbook_delta(msg, "linear", "BTC/USDT:USDT")
    assert isinstance(delta, BookDelta)
    assert (delta.prev_update_id, delta.update_id) == (177400506, 177400507)
    assert delta.bids == ((Decimal("30247.20"), Decimal("30.028")), (Decimal("30240.00"), 0))
    # The matching-engine time (cts), exact to the millisecond, in UTC.
    assert delta.ts == datetime(2023, 6, 28, 8, 29, 27, 464000, tzinfo=UTC)
    snap = msgspec.structs.replace(msg, type="snapshot")
    event = P.parse_orderbook_snapshot(snap, "linear", "BTC/USDT:USDT")
    assert isinstance(event, BookSnapshot) and event.update_id == 177400507
    assert P.parse_bbo(snap, "linear", "BTC/USDT:USDT") is not None
    one_sided = msgspec.structs.replace(snap, data=msgspec.structs.replace(msg.data, a=[]))
    assert P.parse_bbo(one_sided, "linear", "BTC/USDT:USDT") is None


def test_trades_side_is_the_takers_and_ids_stay_strings() -> None:
    raw = (
        b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":['
        b'{"T":1672304486865,"s":"BTCUSDT","S":"Sell","v":"0.001","p":"16578.50",'
        b'"L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1}]}'
    )
    msg = W.public_trade_decoder.decode(raw)
    trade = P.parse_trade(msg.data[0], "linear", "BTC/USDT:USDT")
    assert isinstance(trade, Trade) and trade.side is OrderSide.SELL
    assert trade.trade_id == "20f43950-d8dd-5b31-9112-a178eb6023af"
    assert trade.price == Decimal("16578.50") and trade.qty == Decimal("0.001")
    assert trade.ts.tzinfo is UTC
    text = P.encode_trade(msg.data[0], "linear", "BTC/USDT:USDT")
    assert (text.price, text.qty, text.side) == ("16578.50", "0.001", OrderSide.SELL)
    with pytest.raises(ValueError, match="Buy nor Sell"):
        P.encode_trade(msgspec.structs.replace(msg.data[0], S="sell"), "linear", "X/Y:Y")
    rest = W.RestTrade(
        execId="2100000000007764263",
        symbol="BTCUSDT",
        price="16618.49",
        size="0.00012",
        side="Buy",
        time="1672052955758",
    )
    assert P.parse_rest_trade(rest, "spot", "BTC/USDT").side is OrderSide.BUY


SPOT_TICKER = (
    b'{"topic":"tickers.BTCUSDT","ts":1673853746003,"type":"snapshot","cs":2588407389,'
    b'"data":{"symbol":"BTCUSDT","lastPrice":"21109.77","highPrice24h":"21426.99",'
    b'"lowPrice24h":"20575","prevPrice24h":"20704.93","volume24h":"6780.866843",'
    b'"turnover24h":"141946527.22907118","price24hPcnt":"0.0196",'
    b'"usdIndexPrice":"21120.2400136"}}'
)
LINEAR_TICKER = (
    b'{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT",'
    b'"tickDirection":"MinusTick","price24hPcnt":"-0.158315","lastPrice":"66666.60",'
    b'"prevPrice24h":"79206.20","highPrice24h":"79266.30","lowPrice24h":"65076.90",'
    b'"prevPrice1h":"66666.60","markPrice":"66666.60","indexPrice":"115418.19",'
    b'"openInterest":"492373.72","openInterestValue":"32824881841.75",'
    b'"turnover24h":"4936790807.6521","volume24h":"73191.3870","fundingIntervalHour":"8",'
    b'"fundingCap":"0.005","nextFundingTime":"1760342400000","fundingRate":"-0.005",'
    b'"bid1Price":"66666.60","bid1Size":"23789.165","ask1Price":"66666.70",'
    b'"ask1Size":"23775.469","preOpenPrice":"","preQty":"","curPreListingPhase":""},'
    b'"cs":9532239429,"ts":1760325052630}'
)


def test_spot_ticker_is_a_ticker24h_with_percent_and_vwap() -> None:
    msg = W.ticker_decoder.decode(SPOT_TICKER)
    t = P.parse_ticker(msg.data, "spot", "BTC/USDT", msg.ts)
    assert isinstance(t, Ticker24h)
    assert t.last_price == Decimal("21109.77") and t.open == Decimal("20704.93")
    assert t.price_change == Decimal("404.84")
    assert t.price_change_percent == Decimal("1.96")  # Bybit's 0.0196 is a fraction
    assert t.weighted_avg_price == Decimal("141946527.22907118") / Decimal("6780.866843")
    assert t.close_time - t.open_time == timedelta(days=1) and t.close_time == t.ts
    assert t.bid_price is None and t.trades == 0
    with pytest.raises(ValueError):
        P.parse_mark_price(msg.data, "spot", "BTC/USDT", msg.ts)


def test_linear_ticker_gives_mark_price_and_merges_deltas() -> None:
    msg = W.ticker_decoder.decode(LINEAR_TICKER)
    mark = P.parse_mark_price(msg.data, "linear", "BTC/USDT:USDT", msg.ts)
    assert isinstance(mark, MarkPrice)
    assert mark.funding_rate == Decimal("-0.005") and mark.index_price == Decimal("115418.19")
    assert mark.next_funding_time == datetime(2025, 10, 13, 8, tzinfo=UTC)
    assert mark.estimated_settle_price is None
    delta = W.TickerData(symbol="BTCUSDT", lastPrice="66700.00", openInterest="1")
    state, changed = P.merge_ticker(msg.data, delta)
    assert changed == {"lastPrice", "openInterest"}
    assert state.lastPrice == "66700.00" and state.markPrice == "66666.60"
    assert msg.data.lastPrice == "66666.60"  # the old state is not mutated
    t = P.parse_ticker(state, "linear", "BTC/USDT:USDT", msg.ts)
    assert t.bid_price == Decimal("66666.60") and t.ask_qty == Decimal("23775.469")
    assert P.merge_ticker(state, W.TickerData(symbol="BTCUSDT")) == (state, frozenset())
    symbols = SymbolMap(Exchange.BYBIT, Market.LINEAR)
    symbols.add("BTC/USDT:USDT", "BTCUSDT")
    assert [type(e) for e in P.parse_market_message(msg, symbols)] == [Ticker24h, MarkPrice]
    as_delta = msgspec.structs.replace(msg, type="delta")
    with pytest.raises(ValueError, match="merge_ticker"):
        P.parse_market_message(as_delta, symbols)


def test_klines_use_exconn_interval_names() -> None:
    raw = (
        b'{"topic":"kline.60.BTCUSDT","data":[{"start":1672322400000,"end":1672325999999,'
        b'"interval":"60","open":"16649.5","close":"16677","high":"16677","low":"16608",'
        b'"volume":"2.081","turnover":"34666.4005","confirm":true,"timestamp":1672326000001}],'
        b'"ts":1672326000001,"type":"snapshot"}'
    )
    msg = W.kline_decoder.decode(raw)
    k = P.parse_kline(msg.data[0], "spot", "BTC/USDT")
    assert isinstance(k, Kline) and k.interval == "1h" and k.closed
    assert k.close_time - k.open_time == timedelta(hours=1) - timedelta(milliseconds=1)
    assert k.quote_volume == Decimal("34666.4005")
    for bybit, ours in (("1", "1m"), ("240", "4h"), ("D", "1d"), ("W", "1w"), ("M", "1M")):
        bar = msgspec.structs.replace(msg.data[0], interval=bybit)
        assert P.parse_kline(bar, "spot", "BTC/USDT").interval == ours
    with pytest.raises(ValueError, match="interval"):
        P.parse_kline(msgspec.structs.replace(msg.data[0], interval="7"), "spot", "BTC/USDT")
    row = ("1670608800000", "17071", "17073", "17027", "17055.5", "268611", "15.74462667")
    rest = P.parse_kline_row(row, "linear", "BTC/USD:USD", "1h", 3_600_000, 1670610000000)
    assert rest.open == Decimal("17071") and rest.quote_volume == Decimal("15.74462667")
    assert rest.closed is False  # still forming at server time 1670610000000
    assert P.parse_kline_row(row, "linear", "BTC/USD:USD", "1h", 3_600_000).closed


def test_rest_bodies() -> None:
    raw = (
        b'{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[{"symbol":"BTCUSDT",'
        b'"bid1Price":"20517.96","bid1Size":"2","ask1Price":"20527.77","ask1Size":"1.862172",'
        b'"lastPrice":"20533.13","prevPrice24h":"20393.48","price24hPcnt":"0.0068",'
        b'"highPrice24h":"21128.12","lowPrice24h":"20318.89","turnover24h":"243765620.65",'
        b'"volume24h":"11801.27771","usdIndexPrice":"20784.12009279"}]},"retExtInfo":{},'
        b'"time":1673859087947}'
    )
    env = W.tickers_decoder.decode(raw)
    row = env.result.list[0]
    t = P.parse_rest_ticker(row, "spot", "BTC/USDT", env.time or 0)
    assert t.last_price == Decimal("20533.13") and t.bid_qty == Decimal("2")
    bbo = P.parse_rest_bbo(row, "spot", "BTC/USDT", env.time or 0)
    assert bbo is not None and bbo.ask_price == Decimal("20527.77")
    with pytest.raises(ValueError):
        P.parse_rest_mark_price(row, "spot", "BTC/USDT", 0)
    book = W.orderbook_rest_decoder.decode(
        b'{"retCode":0,"retMsg":"OK","result":{"s":"BTCUSDT","a":[["65557.7","16.606555"]],'
        b'"b":[["65485.47","47.081829"]],"ts":1716863719031,"u":230704,"seq":1432604333,'
        b'"cts":1716863718905},"retExtInfo":{},"time":1716863719382}'
    )
    snap = P.parse_rest_orderbook(book.result, "spot", "BTC/USDT")
    assert snap.update_id == 230704 and snap.asks == ((Decimal("65557.7"), Decimal("16.606555")),)
    err = W.error_decoder.decode(b'{"retCode":10001,"retMsg":"params error"}')
    assert (err.retCode, err.result) == (10001, None)


def test_times_are_exact_utc() -> None:
    assert P.ms_to_utc(1672304486865) == datetime(2022, 12, 29, 9, 1, 26, 865000, tzinfo=UTC)
    assert P.ms_to_utc("1672304486865") == P.ms_to_utc(1672304486865)
