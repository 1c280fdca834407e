"""Binance wire types -> exconn model events and instruments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from exconn.messages import (
    AggTrade,
    Bbo,
    BookDelta,
    BookSnapshot,
    BookTop,
    Kline,
    Level,
    MarketEvent,
    MarkPrice,
    Ticker24h,
    Trade,
    TradeText,
)
from exconn.model.decimal import utc_from_ms
from exconn.model.enums import Exchange, Market, OrderSide
from exconn.model.instruments import Instrument
from exconn.model.symbols import SymbolMap, make_symbol
from exconn.venues.binance.wire import (
    PARTIAL_DEPTH,
    AggTradeEvent,
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    ExchangeInfo,
    KlineEvent,
    KlineRow,
    MarkPriceUpdate,
    PartialDepth,
    PartialDepthUpdate,
    PremiumIndex,
    PriceLevel,
    RestAggTrade,
    RestBookTicker,
    RestTicker24hr,
    RestTrade,
    Ticker24hrEvent,
    TradeEvent,
    stream_kind,
)

EXCHANGE = Exchange.BINANCE.value


def ms_to_utc(ms: int) -> datetime:
    return utc_from_ms(ms)  # exact: no detour through float seconds


def _filter(filters: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    for f in filters:
        if f.get("filterType") == kind:
            return f
    return {}


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    d = Decimal(str(value))
    return d if d else None  # Binance uses 0 for "no limit"


def parse_exchange_info(info: ExchangeInfo, market: Market) -> list[Instrument]:
    """Instruments from ``exchangeInfo``; symbols are named from their base/quote assets (and
    margin asset for USD-M), never guessed from the venue symbol string."""
    out: list[Instrument] = []
    for s in info.symbols:
        if market is Market.LINEAR and s.contractType not in (None, "PERPETUAL"):
            # Dated futures share base/quote/settle with the perpetual; until symbols carry an
            # expiry, only perpetuals are mapped (a clash would make the mapping ambiguous).
            continue
        price_f = _filter(s.filters, "PRICE_FILTER")
        lot_f = _filter(s.filters, "LOT_SIZE")
        # Spot carries NOTIONAL (current) or MIN_NOTIONAL (legacy); USD-M's MIN_NOTIONAL names
        # its field "notional".
        notional_f = _filter(s.filters, "NOTIONAL") or _filter(s.filters, "MIN_NOTIONAL")
        min_notional = _dec(notional_f.get("minNotional", notional_f.get("notional")))
        settle = s.marginAsset if market is Market.LINEAR else None
        out.append(
            Instrument(
                exchange=Exchange.BINANCE,
                market=market,
                symbol=make_symbol(s.baseAsset, s.quoteAsset, settle),
                venue_symbol=s.symbol,
                base=s.baseAsset,
                quote=s.quoteAsset,
                settle=settle,
                tick_size=Decimal(price_f.get("tickSize", "0")),
                step_size=Decimal(lot_f.get("stepSize", "0")),
                min_qty=Decimal(lot_f.get("minQty", "0")),
                max_qty=_dec(lot_f.get("maxQty")),
                min_notional=min_notional,
                max_notional=_dec(notional_f.get("maxNotional")),
                status=s.status.lower(),
            )
        )
    return out


def parse_levels(levels: Sequence[PriceLevel]) -> tuple[Level, ...]:
    return tuple((Decimal(p), Decimal(q)) for p, q in levels)


def parse_trade(wire: TradeEvent, market: str, symbol: str) -> Trade:
    """``{"e":"trade","E":..,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":..,"m":true}``"""
    return Trade(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        trade_id=str(wire.t),
        price=Decimal(wire.p),
        qty=Decimal(wire.q),
        # m: the buyer was the maker, so the taker sold.
        side=OrderSide.SELL if wire.m else OrderSide.BUY,
        ts=ms_to_utc(wire.T),
    )


def encode_trade(wire: TradeEvent, market: str, symbol: str) -> TradeText:
    """``parse_trade`` for the hot path: the same event in encoded form."""
    return TradeText(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        trade_id=str(wire.t),
        price=wire.p,
        qty=wire.q,
        side=OrderSide.SELL if wire.m else OrderSide.BUY,
        ts=wire.T / 1000,
    )


# ============================================================================================
# Market data beyond the hot path: wire -> Decimal model events. Each parser shows the raw
# message it handles. ``symbol`` is exconn's name (``BTC/USDT``, ``BTC/USDT:USDT``), mapped by
# the caller through a ``SymbolMap``; ``parse_market_event`` does that mapping itself.


def _side_of_taker(buyer_is_maker: bool) -> OrderSide:
    # Binance reports whether the *buyer* was the maker; the taker is then the seller.
    return OrderSide.SELL if buyer_is_maker else OrderSide.BUY


def _opt_dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _opt_utc(ms: int | None) -> datetime | None:
    return None if ms is None else ms_to_utc(ms)


# {"e":"aggTrade","E":..,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","f":100,"l":105,
#  "T":123456785,"m":true}   (REST /aggTrades rows carry the same keys without e, E, s)
def parse_agg_trade(wire: AggTradeEvent | RestAggTrade, market: str, symbol: str) -> AggTrade:
    return AggTrade(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        agg_id=str(wire.a),
        price=Decimal(wire.p),
        qty=Decimal(wire.q),
        side=_side_of_taker(wire.m),
        first_trade_id=wire.f,
        last_trade_id=wire.l,
        ts=ms_to_utc(wire.T),
    )


# [{"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012",
#   "time":1499865549590,"isBuyerMaker":true,"isBestMatch":true}]
def parse_rest_trade(wire: RestTrade, market: str, symbol: str) -> Trade:
    return Trade(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        trade_id=str(wire.id),
        price=Decimal(wire.price),
        qty=Decimal(wire.qty),
        side=_side_of_taker(wire.isBuyerMaker),
        ts=ms_to_utc(wire.time),
    )


# {"e":"depthUpdate","E":..,"T":..,"s":"BTCUSDT","U":157,"u":160,"pu":149,
#  "b":[["0.0024","10"]],"a":[["0.0026","100"]]}
def parse_depth_update(
    wire: DepthUpdate, market: str, symbol: str, prev_update_id: int | None = None
) -> BookDelta:
    """A diff as a Decimal ``BookDelta``. ``prev_update_id`` is the id of the book it was
    applied to (``BookSync`` knows it); without one, USD-M's ``pu`` or spot's ``U - 1``."""
    if prev_update_id is None:
        prev_update_id = wire.pu if wire.pu is not None else wire.U - 1
    return BookDelta(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        prev_update_id=prev_update_id,
        update_id=wire.u,
        bids=parse_levels(wire.b),
        asks=parse_levels(wire.a),
        ts=ms_to_utc(wire.E),
    )


# GET /api/v3/depth: {"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],
#  "asks":[["4.00000200","12.00000000"]]}   (USD-M adds "E" and "T")
def parse_depth_snapshot(wire: DepthSnapshot, market: str, symbol: str) -> BookSnapshot:
    """Binance lists both sides best first, as ``BookSnapshot`` wants them."""
    return BookSnapshot(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        update_id=wire.lastUpdateId,
        bids=parse_levels(wire.bids),
        asks=parse_levels(wire.asks),
        ts=_opt_utc(wire.E),
    )


# Partial depth is a ``BookTop``, never a ``BookSnapshot``: a subscriber keeping a ``LocalBook``
# of the ``book`` topic would otherwise have its whole book replaced by the top N levels.


# spot <s>@depth<N>: {"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}
def parse_partial_depth(wire: PartialDepth, market: str, symbol: str, depth: int) -> BookTop:
    """``symbol`` and ``depth`` come from the stream name: the frame carries neither (nor a
    time)."""
    return BookTop(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        depth=depth,
        update_id=wire.lastUpdateId,
        bids=parse_levels(wire.bids),
        asks=parse_levels(wire.asks),
    )


# USD-M <s>@depth<N>: {"e":"depthUpdate","E":..,"T":..,"s":"BTCUSDT","U":..,"u":..,"pu":..,
#  "b":[...], "a":[...]}  -- the whole top N, not a diff
def parse_partial_depth_update(
    wire: PartialDepthUpdate | DepthUpdate, market: str, symbol: str, depth: int
) -> BookTop:
    return BookTop(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        depth=depth,
        update_id=wire.u,
        bids=parse_levels(wire.b),
        asks=parse_levels(wire.a),
        # T is the matching-engine time; E (sending time) is the fallback.
        ts=ms_to_utc(wire.T if wire.T is not None else wire.E),
    )


def partial_depth_levels(stream: str) -> int:
    """``btcusdt@depth20@100ms`` -> 20."""
    name = stream.partition("@")[2].partition("@")[0]
    if not name.startswith("depth") or not name[5:].isdigit():
        raise ValueError(f"{stream!r} is not a partial depth stream")
    return int(name[5:])


# spot:  {"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000",
#         "a":"25.36520000","A":"40.66000000"}
# USD-M: the same plus "e":"bookTicker","E":..,"T":..
def parse_book_ticker(wire: BookTicker, market: str, symbol: str) -> Bbo:
    return Bbo(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        bid_price=Decimal(wire.b),
        bid_qty=Decimal(wire.B),
        ask_price=Decimal(wire.a),
        ask_qty=Decimal(wire.A),
        update_id=wire.u,
        # T is the matching-engine time; E (sending time) is the fallback.
        ts=_opt_utc(wire.T if wire.T is not None else wire.E),
    )


# GET /api/v3/ticker/bookTicker: {"symbol":"LTCBTC","bidPrice":"4.00000000",
#  "bidQty":"431.00000000","askPrice":"4.00000200","askQty":"9.00000000"}  (USD-M adds time)
def parse_rest_book_ticker(wire: RestBookTicker, market: str, symbol: str) -> Bbo:
    return Bbo(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        bid_price=Decimal(wire.bidPrice),
        bid_qty=Decimal(wire.bidQty),
        ask_price=Decimal(wire.askPrice),
        ask_qty=Decimal(wire.askQty),
        update_id=wire.lastUpdateId,
        ts=_opt_utc(wire.time),
    )


# {"e":"kline","E":..,"s":"BNBBTC","k":{"t":1672515780000,"T":1672515839999,"s":"BNBBTC",
#  "i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000",
#  "n":100,"x":false,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}
def parse_kline(wire: KlineEvent, market: str, symbol: str) -> Kline:
    k = wire.k
    return Kline(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        interval=k.i,
        open_time=ms_to_utc(k.t),
        close_time=ms_to_utc(k.T),
        open=Decimal(k.o),
        high=Decimal(k.h),
        low=Decimal(k.l),
        close=Decimal(k.c),
        volume=Decimal(k.v),
        quote_volume=Decimal(k.q),
        trades=k.n,
        closed=k.x,
        ts=ms_to_utc(wire.E),
    )


# GET /api/v3/klines row: [1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100",
#  "148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]
def parse_kline_row(
    row: KlineRow, market: str, symbol: str, interval: str, now_ms: int | None = None
) -> Kline:
    """A REST kline; the last row may still be forming: pass the server time as ``now_ms``
    to mark it open (without it every row counts as closed)."""
    open_ms, o, h, lo, c, v, close_ms, qv, n = row[:9]
    return Kline(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        interval=interval,
        open_time=ms_to_utc(open_ms),
        close_time=ms_to_utc(close_ms),
        open=Decimal(o),
        high=Decimal(h),
        low=Decimal(lo),
        close=Decimal(c),
        volume=Decimal(v),
        quote_volume=Decimal(qv),
        trades=n,
        closed=now_ms is None or close_ms < now_ms,
    )


# {"e":"24hrTicker","E":..,"s":"BNBBTC","p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009",
#  "c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010",
#  "h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}
#  (USD-M: no x, b, B, a, A)
def parse_ticker_24hr(wire: Ticker24hrEvent, market: str, symbol: str) -> Ticker24h:
    return Ticker24h(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        last_price=Decimal(wire.c),
        open=Decimal(wire.o),
        high=Decimal(wire.h),
        low=Decimal(wire.l),
        volume=Decimal(wire.v),
        quote_volume=Decimal(wire.q),
        price_change=Decimal(wire.p),
        price_change_percent=Decimal(wire.P),
        weighted_avg_price=Decimal(wire.w),
        open_time=ms_to_utc(wire.O),
        close_time=ms_to_utc(wire.C),
        trades=wire.n,
        last_qty=Decimal(wire.Q),
        bid_price=_opt_dec(wire.b),
        bid_qty=_opt_dec(wire.B),
        ask_price=_opt_dec(wire.a),
        ask_qty=_opt_dec(wire.A),
        ts=ms_to_utc(wire.E),
    )


# GET /api/v3/ticker/24hr: {"symbol":"BNBBTC","priceChange":"-94.99999800",
#  "priceChangePercent":"-95.960","weightedAvgPrice":"0.29628482","lastPrice":"4.00000200",
#  "lastQty":"200.00000000","bidPrice":..,"openPrice":"99.00000000","highPrice":..,
#  "lowPrice":..,"volume":..,"quoteVolume":..,"openTime":..,"closeTime":..,"count":76}
def parse_rest_ticker_24hr(wire: RestTicker24hr, market: str, symbol: str) -> Ticker24h:
    return Ticker24h(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        last_price=Decimal(wire.lastPrice),
        open=Decimal(wire.openPrice),
        high=Decimal(wire.highPrice),
        low=Decimal(wire.lowPrice),
        volume=Decimal(wire.volume),
        quote_volume=Decimal(wire.quoteVolume),
        price_change=Decimal(wire.priceChange),
        price_change_percent=Decimal(wire.priceChangePercent),
        weighted_avg_price=Decimal(wire.weightedAvgPrice),
        open_time=ms_to_utc(wire.openTime),
        close_time=ms_to_utc(wire.closeTime),
        trades=wire.count,
        last_qty=Decimal(wire.lastQty),
        bid_price=_opt_dec(wire.bidPrice),
        bid_qty=_opt_dec(wire.bidQty),
        ask_price=_opt_dec(wire.askPrice),
        ask_qty=_opt_dec(wire.askQty),
    )


# {"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",
#  "i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}
def parse_mark_price(wire: MarkPriceUpdate, market: str, symbol: str) -> MarkPrice:
    return MarkPrice(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        mark_price=Decimal(wire.p),
        index_price=Decimal(wire.i),
        funding_rate=Decimal(wire.r),
        next_funding_time=ms_to_utc(wire.T),
        estimated_settle_price=_opt_dec(wire.P),
        ts=ms_to_utc(wire.E),
    )


# GET /fapi/v1/premiumIndex: {"symbol":"BTCUSDT","markPrice":"11793.63104562",
#  "indexPrice":"11781.80495970","estimatedSettlePrice":"11781.16138815",
#  "lastFundingRate":"0.00038246","nextFundingTime":1597392000000,"time":1597370495002}
def parse_premium_index(wire: PremiumIndex, market: str, symbol: str) -> MarkPrice:
    return MarkPrice(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        mark_price=Decimal(wire.markPrice),
        index_price=Decimal(wire.indexPrice),
        funding_rate=Decimal(wire.lastFundingRate),
        next_funding_time=ms_to_utc(wire.nextFundingTime),
        estimated_settle_price=_opt_dec(wire.estimatedSettlePrice),
        ts=ms_to_utc(wire.time),
    )


def venue_symbol_of_stream(stream: str) -> str:
    """``btcusdt@depth20@100ms`` -> ``BTCUSDT`` (stream names use lower-case symbols)."""
    return stream.partition("@")[0].upper()


def parse_market_event(
    wire: Any,
    symbols: SymbolMap,
    stream: str | None = None,
    prev_update_id: int | None = None,
) -> MarketEvent | None:
    """Any decoded market stream event -> its model event, the symbol mapped through
    ``symbols`` (UnknownSymbol if it is not listed). None for events with no market model
    (serverShutdown, miniTicker, forceOrder). ``stream`` tells a partial book (``@depth20``,
    a ``BookTop``) from a diff and its depth, and names the symbol of spot partial depth,
    which carries none."""
    market = symbols.market.value
    kind = type(wire)
    partial = kind is PartialDepth or kind is PartialDepthUpdate
    if kind is DepthUpdate and stream is not None and stream_kind(stream) == PARTIAL_DEPTH:
        partial = True  # decoded by its tag alone: the stream name says it is a top-N view
    if partial:
        if stream is None:
            raise ValueError("partial depth does not say its depth: pass its stream name")
        depth = partial_depth_levels(stream)
        if kind is PartialDepth:  # spot: no symbol either
            symbol = symbols.from_venue(venue_symbol_of_stream(stream))
            return parse_partial_depth(wire, market, symbol, depth)
        return parse_partial_depth_update(wire, market, symbols.from_venue(wire.s), depth)
    parser = _MARKET_PARSERS.get(kind)
    if parser is None:
        return None
    symbol = symbols.from_venue(wire.s)
    if kind is DepthUpdate:
        return parse_depth_update(wire, market, symbol, prev_update_id)
    return parser(wire, market, symbol)


_MARKET_PARSERS: dict[type, Any] = {
    DepthUpdate: parse_depth_update,
    TradeEvent: parse_trade,
    AggTradeEvent: parse_agg_trade,
    BookTicker: parse_book_ticker,
    KlineEvent: parse_kline,
    Ticker24hrEvent: parse_ticker_24hr,
    MarkPriceUpdate: parse_mark_price,
}
