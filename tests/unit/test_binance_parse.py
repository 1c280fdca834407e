"""Binance parsers in detail: taker side from ``m``, exact Decimals, UTC times, symbols through
a SymbolMap (spot ``BASE/QUOTE``, USD-M ``BASE/QUOTE:SETTLE``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest

from exconn.errors import UnknownSymbol
from exconn.messages import (
    AggTrade,
    Bbo,
    BookDelta,
    BookTop,
    EventBatch,
    Kline,
    MarkPrice,
    Ticker24h,
    Trade,
)
from exconn.model.enums import Exchange, Market, OrderSide
from exconn.model.symbols import SymbolMap
from exconn.venues.binance import parse as P
from exconn.venues.binance import wire as W


@pytest.fixture
def spot() -> SymbolMap:
    m = SymbolMap(Exchange.BINANCE, Market.SPOT)
    m.add("BNB/BTC", "BNBBTC")
    m.add("BTC/USDT", "BTCUSDT")
    return m


@pytest.fixture
def usdm() -> SymbolMap:
    m = SymbolMap(Exchange.BINANCE, Market.LINEAR)
    m.add("BTC/USDT:USDT", "BTCUSDT")
    m.add("1000SHIB/USDT:USDT", "1000SHIBUSDT")
    return m


def _event(raw: bytes, symbols: SymbolMap, stream: str | None = None):
    return P.parse_market_event(W.market_event_decoder.decode(raw), symbols, stream)


@pytest.mark.parametrize(("m", "side"), [("true", OrderSide.SELL), ("false", OrderSide.BUY)])
def test_taker_side_comes_from_buyer_is_maker(spot: SymbolMap, m: str, side: OrderSide) -> None:
    trade = _event(
        b'{"e":"trade","E":1,"s":"BNBBTC","t":7,"p":"0.001","q":"100","T":2,"m":%s}' % m.encode(),
        spot,
    )
    agg = _event(
        b'{"e":"aggTrade","E":1,"s":"BNBBTC","a":9,"p":"0.001","q":"1","f":3,"l":5,"T":2,"m":%s}'
        % m.encode(),
        spot,
    )
    rest = P.parse_rest_trade(
        W.RestTrade(id=1, price="1", qty="1", time=0, isBuyerMaker=m == "true"), "spot", "BNB/BTC"
    )
    assert trade.side is agg.side is rest.side is side


def test_prices_are_exact_decimals_never_floats(spot: SymbolMap) -> None:
    trade = _event(
        b'{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"0.10000000","q":"0.00000001","T":2,'
        b'"m":false}',
        spot,
    )
    assert isinstance(trade, Trade)
    assert trade.price == Decimal("0.1") and str(trade.price) == "0.10000000"
    assert trade.qty == Decimal("1E-8") and type(trade.qty) is Decimal
    # 0.1 + 0.2 is exact in Decimal; a float anywhere on the way would show here.
    delta = P.parse_depth_update(
        W.DepthUpdate(E=1, s="BTCUSDT", U=5, u=6, b=[("0.1", "0.2")], a=[]), "spot", "BTC/USDT"
    )
    price, qty = delta.bids[0]
    assert price + qty == Decimal("0.3")


def test_times_are_utc_and_millisecond_exact(spot: SymbolMap) -> None:
    trade = _event(
        b'{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"1","q":"1","T":1499405658657,"m":false}',
        spot,
    )
    assert trade.ts.tzinfo is UTC
    assert trade.ts == datetime(2017, 7, 7, 5, 34, 18, 657000, tzinfo=UTC)
    assert P.ms_to_utc(0) == datetime(1970, 1, 1, tzinfo=UTC)


def test_usdm_symbols_carry_the_settle_asset(usdm: SymbolMap) -> None:
    mark = _event(
        b'{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",'
        b'"i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}',
        usdm,
    )
    assert isinstance(mark, MarkPrice)
    assert mark.symbol == "BTC/USDT:USDT" and mark.market == "linear"
    assert mark.funding_rate == Decimal("0.00038167")
    assert mark.next_funding_time == datetime(2019, 7, 5, 6, 0, tzinfo=UTC)
    assert mark.estimated_settle_price == Decimal("11784.25641265")
    agg = _event(
        b'{"e":"aggTrade","E":1,"a":5933014,"s":"1000SHIBUSDT","p":"0.001","q":"100","f":100,'
        b'"l":105,"T":123456785,"m":true,"st":1}',
        usdm,
    )
    assert isinstance(agg, AggTrade) and agg.symbol == "1000SHIB/USDT:USDT"
    assert (agg.agg_id, agg.first_trade_id, agg.last_trade_id) == ("5933014", 100, 105)


def test_unknown_venue_symbol_raises(spot: SymbolMap) -> None:
    with pytest.raises(UnknownSymbol):
        _event(b'{"e":"trade","E":1,"s":"ETHBTC","t":7,"p":"1","q":"1","T":2,"m":false}', spot)


def test_book_ticker_spot_and_usdm(spot: SymbolMap, usdm: SymbolMap) -> None:
    raw = b'{"u":400900217,"s":"BTCUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}'  # noqa: E501
    bbo = P.parse_market_event(W.book_ticker_decoder.decode(raw), spot)
    assert bbo == Bbo(
        exchange="binance",
        market="spot",
        symbol="BTC/USDT",
        bid_price=Decimal("25.35190000"),
        bid_qty=Decimal("31.21000000"),
        ask_price=Decimal("25.36520000"),
        ask_qty=Decimal("40.66000000"),
        update_id=400900217,
        ts=None,  # spot bookTicker carries no time
    )
    stream, event = W.decode_combined(
        b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1,"E":1568014460893,'
        b'"T":1568014460891,"s":"BTCUSDT","b":"1","B":"2","a":"3","A":"4"}}'
    )
    bbo = P.parse_market_event(event, usdm, stream)
    assert isinstance(bbo, Bbo) and bbo.symbol == "BTC/USDT:USDT"
    assert bbo.ts == P.ms_to_utc(1568014460891)  # transaction time, not send time


def test_partial_depth_spot_takes_symbol_from_stream(spot: SymbolMap) -> None:
    stream, event = W.decode_combined(
        b'{"stream":"bnbbtc@depth5@100ms","data":{"lastUpdateId":160,'
        b'"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}}'
    )
    assert isinstance(event, W.PartialDepth)
    top = P.parse_market_event(event, spot, stream)
    # A top-N view is a BookTop: a BookSnapshot would replace a LocalBook's whole book.
    assert top == BookTop(
        exchange="binance",
        market="spot",
        symbol="BNB/BTC",
        depth=5,
        update_id=160,
        bids=((Decimal("0.0024"), Decimal("10")),),
        asks=((Decimal("0.0026"), Decimal("100")),),
        ts=None,  # spot partial depth carries no time
    )
    with pytest.raises(ValueError, match="stream"):
        P.parse_market_event(event, spot)


def test_usdm_partial_depth_is_a_top_and_diff_is_a_delta(usdm: SymbolMap) -> None:
    data = (
        b'{"e":"depthUpdate","E":5,"T":4,"s":"BTCUSDT","U":157,"u":160,"pu":149,'
        b'"b":[["0.0024","10"]],"a":[["0.0026","0"]]}'
    )
    partial, diff = "btcusdt@depth20@100ms", "btcusdt@depth"
    name, event = W.decode_combined(b'{"stream":"%s","data":%s}' % (partial.encode(), data))
    assert isinstance(event, W.PartialDepthUpdate)  # never a DepthUpdate a book could apply
    top = P.parse_market_event(event, usdm, name)
    assert isinstance(top, BookTop) and (top.depth, top.update_id) == (20, 160)
    assert top.ts == P.ms_to_utc(4)  # the engine time T
    # Decoded by its tag alone it is a DepthUpdate: the stream name still makes it a top.
    tagged = W.market_event_decoder.decode(data)
    assert isinstance(tagged, W.DepthUpdate)
    assert type(P.parse_market_event(tagged, usdm, partial)) is BookTop
    name, event = W.decode_combined(b'{"stream":"%s","data":%s}' % (diff.encode(), data))
    assert isinstance(event, W.DepthUpdate)
    assert type(P.parse_market_event(event, usdm, name)) is BookDelta
    delta = P.parse_market_event(event, usdm, "btcusdt@depth")
    assert isinstance(delta, BookDelta)
    assert (delta.prev_update_id, delta.update_id) == (149, 160)  # USD-M links by pu
    spot_delta = P.parse_depth_update(
        W.DepthUpdate(E=1, s="BTCUSDT", U=157, u=160, b=[], a=[]), "spot", "BTC/USDT"
    )
    assert spot_delta.prev_update_id == 156  # spot: U - 1
    assert delta.asks == ((Decimal("0.0026"), Decimal("0")),)


def test_kline_event_and_rest_row(spot: SymbolMap) -> None:
    kline = _event(
        b'{"e":"kline","E":1672515782136,"s":"BNBBTC","k":{"t":1672515780000,'
        b'"T":1672515839999,"s":"BNBBTC","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020",'
        b'"h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,"q":"1.0000","V":"500",'
        b'"Q":"0.500","B":"123456"}}',
        spot,
    )
    assert isinstance(kline, Kline)
    assert (kline.open, kline.high, kline.low, kline.close) == tuple(
        Decimal(x) for x in ("0.0010", "0.0025", "0.0015", "0.0020")
    )
    assert kline.interval == "1m" and kline.closed is False and kline.trades == 100
    rows = W.klines_decoder.decode(
        b'[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100",'
        b'"148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397",'
        b'"28.46694368","0"]]'
    )
    bar = P.parse_kline_row(rows[0], "spot", "BNB/BTC", "1d", now_ms=1499644799999)
    assert bar.closed is False  # the period has not ended at now_ms
    assert P.parse_kline_row(rows[0], "spot", "BNB/BTC", "1d").closed is True
    assert bar.volume == Decimal("148976.11427815") and bar.trades == 308


def test_ticker_24hr_spot_has_bid_ask_usdm_not(spot: SymbolMap, usdm: SymbolMap) -> None:
    body = (
        b'"E":1,"s":"BTCUSDT","p":"0.0015","P":"250.00","w":"0.0018","c":"0.0025","Q":"10",'
        b'"o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,'
        b'"F":0,"L":18150,"n":18151'
    )
    with_bbo = b'{"e":"24hrTicker",' + body + b',"b":"0.0024","B":"10","a":"0.0026","A":"100"}'
    spot_t = _event(with_bbo, spot)
    usdm_t = _event(b'{"e":"24hrTicker",' + body + b"}", usdm)
    assert isinstance(spot_t, Ticker24h) and isinstance(usdm_t, Ticker24h)
    assert spot_t.bid_price == Decimal("0.0024") and usdm_t.bid_price is None
    assert usdm_t.price_change_percent == Decimal("250.00")
    assert usdm_t.close_time == datetime(1970, 1, 2, tzinfo=UTC)


def test_events_without_a_model_give_none(spot: SymbolMap) -> None:
    assert _event(b'{"e":"serverShutdown","E":1}', spot) is None
    mini = (
        b'{"e":"24hrMiniTicker","E":1,"s":"BNBBTC","c":"1","o":"1","h":"1","l":"1","v":"1","q":"1"}'
    )
    assert _event(mini, spot) is None


def test_new_model_events_cross_an_event_batch(spot: SymbolMap) -> None:
    """The new events are in MarketEvent, so they travel in an EventBatch and come back equal."""
    events = [
        _event(
            b'{"e":"aggTrade","E":1,"s":"BNBBTC","a":9,"p":"0.1","q":"1","f":3,"l":5,"T":2,"m":true}',
            spot,
        ),
        P.parse_premium_index(
            W.PremiumIndex(
                symbol="BTCUSDT",
                markPrice="1.5",
                indexPrice="1.4",
                lastFundingRate="-0.0001",
                nextFundingTime=0,
                time=1,
            ),
            "linear",
            "BTC/USDT:USDT",
        ),
        P.parse_rest_book_ticker(
            W.RestBookTicker(
                symbol="BTCUSDT", bidPrice="1", bidQty="2", askPrice="3", askQty="4", time=5
            ),
            "spot",
            "BTC/USDT",
        ),
    ]
    assert EventBatch.of(events).events == tuple(events)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(events[1]), type=MarkPrice) == events[1]


def test_ws_api_result_is_decoded_by_the_request_type() -> None:
    reply = W.ws_api_response_decoder.decode(
        b'{"id":"x","status":200,"result":{"symbol":"BTCUSDT","orderId":12569099453,'
        b'"orderListId":-1,"clientOrderId":"4d96324ff9d44481926157ec08158a40",'
        b'"transactTime":1660801715793},"rateLimits":[{"rateLimitType":"ORDERS",'
        b'"interval":"SECOND","intervalNum":10,"limit":50,"count":1}]}'
    )
    assert reply.error is None and reply.rateLimits[0].count == 1
    ack = msgspec.json.decode(reply.result, type=W.SpotOrderAck)
    assert ack.orderId == 12569099453
    err = W.ws_api_response_decoder.decode(
        b'{"id":null,"status":401,"error":{"code":-2015,"msg":"Invalid API-key"}}'
    )
    assert not err.result and err.error == W.ErrorBody(code=-2015, msg="Invalid API-key")


def test_usdm_all_symbol_book_ticker_stream_decodes() -> None:
    stream, event = W.decode_combined(
        b'{"stream":"!bookTicker","data":{"e":"bookTicker","u":1,"E":2,"T":3,"s":"BTCUSDT",'
        b'"b":"1","B":"2","a":"3","A":"4"}}'
    )
    assert stream == "!bookTicker" and isinstance(event, W.BookTicker)
    assert W.stream_kind("!bookTicker") == "bookTicker"
    assert W.stream_kind("btcusdt@depth@100ms") == "tagged"
    assert W.stream_kind("btcusdt@depth10") == "partialDepth"
