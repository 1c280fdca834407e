"""Bybit V5 wire types -> exconn model events and instruments.

The events are the ones Binance produces (``exconn.messages``), so a subscriber cannot tell the
venues apart by shape. ``symbol`` is exconn's name (``BTC/USDT``, ``BTC/USDT:USDT``), mapped by
the caller through a ``SymbolMap``; ``parse_market_message`` does that mapping itself. Times are
UTC-aware datetimes built from integer milliseconds (exact); prices and sizes are Decimal.

Where Bybit publishes less than the model asks for, the choice is written at the parser:
- ``Ticker24h.trades`` and ``Kline.trades``: Bybit publishes no trade count -> 0.
- ``Ticker24h.weighted_avg_price``: turnover24h / volume24h (quote over base volume, which is
  what a 24 h VWAP is); ``open`` is ``prevPrice24h``; the window is [ts - 24 h, ts].
- ``Ticker24h.price_change_percent`` is a percentage like Binance's (Bybit's ``price24hPcnt``
  is a fraction: 0.0196 -> 1.96).
- ``Kline.interval`` is exconn's notation (``5m``, ``1h``, ``1d``), not Bybit's (5, 60, D),
  so a ``kline_1h`` topic delivers klines whose interval reads ``1h`` on either venue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loguru import logger

from exconn.errors import InvalidSymbol
from exconn.messages import (
    Bbo,
    BookDelta,
    BookSnapshot,
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
from exconn.venues.bybit.book_sync import replaces_book
from exconn.venues.bybit.urls import EXCONN_INTERVAL
from exconn.venues.bybit.wire import (
    InstrumentsResult,
    KlineBar,
    KlineMessage,
    KlineRow,
    LinearInstrument,
    OrderbookMessage,
    OrderbookResult,
    PriceLevel,
    PublicTrade,
    PublicTradeMessage,
    RestTicker,
    RestTrade,
    SpotInstrument,
    TickerData,
    TickerMessage,
)

EXCHANGE = Exchange.BYBIT.value
PERPETUAL = "LinearPerpetual"
DAY = timedelta(days=1)

# Bybit names the taker's side; anything else is a malformed message.
_TAKER_SIDE = {"Buy": OrderSide.BUY, "Sell": OrderSide.SELL}


def ms_to_utc(ms: int | str) -> datetime:
    """Epoch milliseconds (a number on WebSocket, a string in REST bodies) as UTC."""
    return utc_from_ms(int(ms))


def taker_side(side: str) -> OrderSide:
    try:
        return _TAKER_SIDE[side]
    except KeyError:
        raise ValueError(f"bybit: side {side!r} is neither Buy nor Sell") from None


def opt_decimal(value: str | None) -> Decimal | None:
    # Bybit sends "" for a value it does not have (spot bid/ask, perpetual delivery price).
    return Decimal(value) if value else None


def _limit(value: str | None) -> Decimal | None:
    d = opt_decimal(value)
    return d if d else None  # 0 or absent: no limit


def _interval(bybit: str) -> str:
    try:
        return EXCONN_INTERVAL[bybit]
    except KeyError:
        raise ValueError(f"bybit: unknown kline interval {bybit!r}") from None


# ============================================================================================
# Instruments (bybit.md §4.1)


# GET /v5/market/instruments-info?category=spot: {"symbol":"BTCUSDT","baseCoin":"BTC",
#  "quoteCoin":"USDT","status":"Trading","lotSizeFilter":{"basePrecision":"0.000001",
#  "quotePrecision":"0.0000001","minOrderQty":"0.000011","maxOrderQty":"83","minOrderAmt":"5",
#  "maxOrderAmt":"8000000","maxLimitOrderQty":"83","maxMarketOrderQty":"41.5"},
#  "priceFilter":{"tickSize":"0.1"},...}
# ?category=linear: {"symbol":"BTCUSDT","contractType":"LinearPerpetual","status":"Trading",
#  "baseCoin":"BTC","quoteCoin":"USDT","settleCoin":"USDT","priceFilter":{"minPrice":"0.10",
#  "maxPrice":"1999999.80","tickSize":"0.10"},"lotSizeFilter":{"maxOrderQty":"1190.000",
#  "minOrderQty":"0.001","qtyStep":"0.001","maxMktOrderQty":"500.000",
#  "minNotionalValue":"5"},...}
def parse_instruments(
    items: Iterable[SpotInstrument | LinearInstrument] | InstrumentsResult[Any],
    market: Market,
) -> list[Instrument]:
    """Instruments from ``instruments-info``, named from their coins (never guessed from the
    venue symbol). Spot: the quantity step is ``basePrecision`` and the minimum is the order
    value ``minOrderAmt`` (``minOrderQty`` is deprecated and no longer checked, so
    ``min_qty`` is 0); ``max_qty`` is ``maxLimitOrderQty`` (market orders have a lower
    ``maxMarketOrderQty``). Linear: ``qtyStep``, ``minOrderQty``, ``maxOrderQty`` (limit
    orders) and ``minNotionalValue``; only perpetuals are mapped, because dated futures share
    base/quote/settle with them and exconn symbols carry no expiry yet. A listing whose coins
    do not make a symbol, or that repeats one, is skipped (logged) rather than failing the
    load."""
    market = Market(market)
    if isinstance(items, InstrumentsResult):
        items = items.list
    out: list[Instrument] = []
    seen: set[str] = set()
    for it in items:
        settle: str | None = None
        max_notional: Decimal | None = None
        if market is Market.LINEAR:
            if not isinstance(it, LinearInstrument):
                raise TypeError(f"bybit linear: expected LinearInstrument, not {type(it).__name__}")
            if it.contractType != PERPETUAL:
                continue
            lot = it.lotSizeFilter
            settle = it.settleCoin or it.quoteCoin
            step = Decimal(lot.qtyStep)
            min_qty = Decimal(lot.minOrderQty)
            max_qty = _limit(lot.maxOrderQty)
            min_notional = _limit(lot.minNotionalValue)
        else:
            if not isinstance(it, SpotInstrument):
                raise TypeError(f"bybit spot: expected SpotInstrument, not {type(it).__name__}")
            slot = it.lotSizeFilter
            step = Decimal(slot.basePrecision)
            min_qty = Decimal(0)
            max_qty = _limit(slot.maxLimitOrderQty or slot.maxOrderQty)
            min_notional = _limit(slot.minOrderAmt)
        try:
            symbol = make_symbol(it.baseCoin, it.quoteCoin, settle)
        except InvalidSymbol as exc:
            logger.bind(exchange=EXCHANGE, market=market.value).debug(
                "instrument {} skipped: {}", it.symbol, exc
            )
            continue
        if symbol in seen:
            logger.bind(exchange=EXCHANGE, market=market.value).debug(
                "instrument {} skipped: {} is listed twice", it.symbol, symbol
            )
            continue
        seen.add(symbol)
        out.append(
            Instrument(
                exchange=Exchange.BYBIT,
                market=market,
                symbol=symbol,
                venue_symbol=it.symbol,
                base=it.baseCoin.upper(),
                quote=it.quoteCoin.upper(),
                settle=settle.upper() if settle else None,
                tick_size=Decimal(it.priceFilter.tickSize),
                step_size=step,
                min_qty=min_qty,
                max_qty=max_qty,
                min_notional=min_notional,
                max_notional=max_notional,
                status=it.status.lower(),
            )
        )
    return out


# ============================================================================================
# Order book


def parse_levels(levels: Sequence[PriceLevel]) -> tuple[Level, ...]:
    return tuple((Decimal(p), Decimal(q)) for p, q in levels)


def book_ts_ms(msg: OrderbookMessage) -> int:
    """The matching-engine time (``cts``, comparable with trade times) or the push time."""
    return msg.cts if msg.cts is not None else msg.ts


# {"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,"data":{"s":"BTCUSDT",
#  "b":[["16493.50","0.006"],["16493.00","0.100"]],"a":[["16611.00","0.029"],
#  ["16612.00","0.213"]],"u":18521288,"seq":7961638724},"cts":1672304484976}
def parse_orderbook_snapshot(msg: OrderbookMessage, market: str, symbol: str) -> BookSnapshot:
    """Bybit lists snapshot bids descending and asks ascending: best first, as the model wants.
    A ``u == 1`` delta is a snapshot too (``book_sync.replaces_book``)."""
    d = msg.data
    return BookSnapshot(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        update_id=d.u,
        bids=parse_levels(d.b),
        asks=parse_levels(d.a),
        ts=ms_to_utc(book_ts_ms(msg)),
    )


# {"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT",
#  "b":[["30247.20","30.028"],["30240.00","0"]],"a":[["30248.70","0"],["30249.30","0.892"]],
#  "u":177400507,"seq":66544703342},"cts":1687940967464}
def parse_orderbook_delta(
    msg: OrderbookMessage, market: str, symbol: str, prev_update_id: int | None = None
) -> BookDelta:
    """A delta as a Decimal ``BookDelta``; ``prev_update_id`` defaults to ``u - 1`` (Bybit's
    ids count messages of one depth topic)."""
    d = msg.data
    return BookDelta(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        prev_update_id=d.u - 1 if prev_update_id is None else prev_update_id,
        update_id=d.u,
        bids=parse_levels(d.b),
        asks=parse_levels(d.a),
        ts=ms_to_utc(book_ts_ms(msg)),
    )


# {"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1709891679000,"data":{"s":"BTCUSDT",
#  "b":[["27450.00","0.500"]],"a":[["27451.00","0.750"]],"u":123456789,"seq":987654321},
#  "cts":1709891679000}
def parse_bbo(msg: OrderbookMessage, market: str, symbol: str) -> Bbo | None:
    """The best bid and ask of a level-1 snapshot (None while a side is empty). Deltas on
    level 1 (before 2025-03-20) need the book they apply to: ``streams`` keeps one."""
    d = msg.data
    if not d.b or not d.a:
        return None
    (bp, bq), (ap, aq) = d.b[0], d.a[0]
    return Bbo(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        bid_price=Decimal(bp),
        bid_qty=Decimal(bq),
        ask_price=Decimal(ap),
        ask_qty=Decimal(aq),
        update_id=d.u,
        ts=ms_to_utc(book_ts_ms(msg)),
    )


# GET /v5/market/orderbook: {"s":"BTCUSDT","a":[["65557.7","16.606555"]],
#  "b":[["65485.47","47.081829"]],"ts":1716863719031,"u":230704,"seq":1432604333,
#  "cts":1716863718905}
def parse_rest_orderbook(wire: OrderbookResult, market: str, symbol: str) -> BookSnapshot:
    """``u`` is the 1000-level stream's id: comparable with ``orderbook.1000`` only."""
    return BookSnapshot(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        update_id=wire.u,
        bids=parse_levels(wire.b),
        asks=parse_levels(wire.a),
        ts=ms_to_utc(wire.cts if wire.cts is not None else wire.ts),
    )


# ============================================================================================
# Trades


# {"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",
#  "i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}
def parse_trade(wire: PublicTrade, market: str, symbol: str) -> Trade:
    return Trade(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        trade_id=wire.i,
        price=Decimal(wire.p),
        qty=Decimal(wire.v),
        side=taker_side(wire.S),
        ts=ms_to_utc(wire.T),
    )


def encode_trade(wire: PublicTrade, market: str, symbol: str) -> TradeText:
    """``parse_trade`` for the hot path: the same event in encoded form."""
    return TradeText(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        trade_id=wire.i,
        price=wire.p,
        qty=wire.v,
        side=taker_side(wire.S),
        ts=wire.T / 1000,
    )


# GET /v5/market/recent-trade row: {"execId":"2100000000007764263","symbol":"BTCUSDT",
#  "price":"16618.49","size":"0.00012","side":"Buy","time":"1672052955758",
#  "isBlockTrade":false,"isRPITrade":true,"seq":"123456"}
def parse_rest_trade(wire: RestTrade, market: str, symbol: str) -> Trade:
    return Trade(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        trade_id=wire.execId,
        price=Decimal(wire.price),
        qty=Decimal(wire.size),
        side=taker_side(wire.side),
        ts=ms_to_utc(wire.time),
    )


# ============================================================================================
# Klines


# {"start":1672324800000,"end":1672325099999,"interval":"5","open":"16649.5","close":"16677",
#  "high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005","confirm":false,
#  "timestamp":1672324988882}
def parse_kline(bar: KlineBar, market: str, symbol: str) -> Kline:
    """``end`` is the last millisecond of the bar (as Binance's close time); ``turnover`` is
    the quote volume; ``confirm`` says the bar closed."""
    return Kline(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        interval=_interval(bar.interval),
        open_time=ms_to_utc(bar.start),
        close_time=ms_to_utc(bar.end),
        open=Decimal(bar.open),
        high=Decimal(bar.high),
        low=Decimal(bar.low),
        close=Decimal(bar.close),
        volume=Decimal(bar.volume),
        quote_volume=Decimal(bar.turnover),
        trades=0,  # not published by Bybit
        closed=bar.confirm,
        ts=ms_to_utc(bar.timestamp),
    )


# GET /v5/market/kline row (newest first): ["1670608800000","17071","17073","17027",
#  "17055.5","268611","15.74462667"] = start, open, high, low, close, volume, turnover
def parse_kline_row(
    row: KlineRow,
    market: str,
    symbol: str,
    interval: str,
    interval_ms: int,
    now_ms: int | None = None,
) -> Kline:
    """A REST kline. Rows carry only their start: ``interval`` (exconn notation) and its
    length ``interval_ms`` give the close (months vary: pass the month's length). The newest
    row may still be forming: pass the server time as ``now_ms`` to mark it open (without it
    every row counts as closed)."""
    start, o, h, lo, c, v, turnover = row
    open_ms = int(start)
    close_ms = open_ms + interval_ms - 1
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
        quote_volume=Decimal(turnover),
        trades=0,
        closed=now_ms is None or close_ms < now_ms,
    )


# ============================================================================================
# Tickers: 24 h statistics, best bid/ask and (linear) mark price and funding

TICKER_FIELDS = frozenset(
    {
        "lastPrice",
        "highPrice24h",
        "lowPrice24h",
        "prevPrice24h",
        "volume24h",
        "turnover24h",
        "price24hPcnt",
        "bid1Price",
        "bid1Size",
        "ask1Price",
        "ask1Size",
    }
)
MARK_FIELDS = frozenset({"markPrice", "indexPrice", "fundingRate", "nextFundingTime"})
_TICKER_DATA_FIELDS = TickerData.__struct_fields__[1:]  # every field but the symbol


def merge_ticker(state: TickerData, delta: TickerData) -> tuple[TickerData, frozenset[str]]:
    """A linear ``delta`` merged into the last full ticker: absent fields are unchanged
    (bybit.md §6.1). Returns the new state and the names of the fields the delta set."""
    changed = {f: v for f in _TICKER_DATA_FIELDS if (v := getattr(delta, f)) is not None}
    if not changed:
        return state, frozenset()
    values = {f: getattr(state, f) for f in _TICKER_DATA_FIELDS}
    values.update(changed)
    return TickerData(symbol=state.symbol, **values), frozenset(changed)


def _ticker24h(
    market: str,
    symbol: str,
    ts: datetime,
    last: str | None,
    prev24h: str | None,
    high: str | None,
    low: str | None,
    volume: str | None,
    turnover: str | None,
    pcnt: str | None,
    bid: tuple[str | None, str | None, str | None, str | None],
) -> Ticker24h:
    if not (last and prev24h and high and low and volume and turnover and pcnt):
        raise ValueError(f"bybit ticker of {symbol} lacks 24 h statistics")
    last_d, open_d = Decimal(last), Decimal(prev24h)
    vol, quote = Decimal(volume), Decimal(turnover)
    bid_p, bid_q, ask_p, ask_q = bid
    return Ticker24h(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        last_price=last_d,
        open=open_d,
        high=Decimal(high),
        low=Decimal(low),
        volume=vol,
        quote_volume=quote,
        price_change=last_d - open_d,
        price_change_percent=Decimal(pcnt).scaleb(2),
        weighted_avg_price=quote / vol if vol else Decimal(0),
        open_time=ts - DAY,
        close_time=ts,
        trades=0,  # not published by Bybit
        bid_price=opt_decimal(bid_p),
        bid_qty=opt_decimal(bid_q),
        ask_price=opt_decimal(ask_p),
        ask_qty=opt_decimal(ask_q),
        ts=ts,
    )


# spot: {"topic":"tickers.BTCUSDT","ts":1673853746003,"type":"snapshot","cs":2588407389,
#  "data":{"symbol":"BTCUSDT","lastPrice":"21109.77","highPrice24h":"21426.99",
#  "lowPrice24h":"20575","prevPrice24h":"20704.93","volume24h":"6780.866843",
#  "turnover24h":"141946527.22907118","price24hPcnt":"0.0196","usdIndexPrice":"21120.24"}}
# linear: the same 24 h fields plus bid1Price/bid1Size/ask1Price/ask1Size, markPrice,
#  indexPrice, fundingRate, nextFundingTime, openInterest... (deltas: changed fields only)
def parse_ticker(data: TickerData, market: str, symbol: str, ts_ms: int) -> Ticker24h:
    """A full ticker (a snapshot, or linear state after ``merge_ticker``). ValueError while
    the 24 h statistics are incomplete."""
    return _ticker24h(
        market,
        symbol,
        ms_to_utc(ts_ms),
        data.lastPrice,
        data.prevPrice24h,
        data.highPrice24h,
        data.lowPrice24h,
        data.volume24h,
        data.turnover24h,
        data.price24hPcnt,
        (data.bid1Price, data.bid1Size, data.ask1Price, data.ask1Size),
    )


# linear tickers: {...,"markPrice":"66666.60","indexPrice":"115418.19",
#  "nextFundingTime":"1760342400000","fundingRate":"-0.005",...}
def parse_mark_price(data: TickerData, market: str, symbol: str, ts_ms: int) -> MarkPrice:
    """Mark, index and funding from a full linear ticker. ValueError when a field is
    missing (spot tickers carry none of them)."""
    if not (data.markPrice and data.indexPrice and data.fundingRate and data.nextFundingTime):
        raise ValueError(f"bybit ticker of {symbol} carries no mark price and funding")
    return MarkPrice(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        mark_price=Decimal(data.markPrice),
        index_price=Decimal(data.indexPrice),
        funding_rate=Decimal(data.fundingRate),
        next_funding_time=ms_to_utc(data.nextFundingTime),
        estimated_settle_price=opt_decimal(data.predictedDeliveryPrice),
        ts=ms_to_utc(ts_ms),
    )


# GET /v5/market/tickers row: {"symbol":"BTCUSDT","bid1Price":"20517.96","bid1Size":"2",
#  "ask1Price":"20527.77","ask1Size":"1.862172","lastPrice":"20533.13",
#  "prevPrice24h":"20393.48","price24hPcnt":"0.0068","highPrice24h":"21128.12",
#  "lowPrice24h":"20318.89","turnover24h":"243765620.65","volume24h":"11801.27771",...}
def parse_rest_ticker(wire: RestTicker, market: str, symbol: str, ts_ms: int) -> Ticker24h:
    """``ts_ms`` is the envelope's ``time`` (rows carry none)."""
    return _ticker24h(
        market,
        symbol,
        ms_to_utc(ts_ms),
        wire.lastPrice,
        wire.prevPrice24h,
        wire.highPrice24h,
        wire.lowPrice24h,
        wire.volume24h,
        wire.turnover24h,
        wire.price24hPcnt,
        (wire.bid1Price, wire.bid1Size, wire.ask1Price, wire.ask1Size),
    )


def parse_rest_mark_price(wire: RestTicker, market: str, symbol: str, ts_ms: int) -> MarkPrice:
    if not (wire.markPrice and wire.indexPrice and wire.fundingRate and wire.nextFundingTime):
        raise ValueError(f"bybit ticker of {symbol} carries no mark price and funding")
    return MarkPrice(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        mark_price=Decimal(wire.markPrice),
        index_price=Decimal(wire.indexPrice),
        funding_rate=Decimal(wire.fundingRate),
        next_funding_time=ms_to_utc(wire.nextFundingTime),
        estimated_settle_price=opt_decimal(wire.predictedDeliveryPrice),
        ts=ms_to_utc(ts_ms),
    )


def parse_rest_bbo(wire: RestTicker, market: str, symbol: str, ts_ms: int) -> Bbo | None:
    """Best bid/ask of a REST ticker row (None when the row has none)."""
    if not (wire.bid1Price and wire.bid1Size and wire.ask1Price and wire.ask1Size):
        return None
    return Bbo(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        bid_price=Decimal(wire.bid1Price),
        bid_qty=Decimal(wire.bid1Size),
        ask_price=Decimal(wire.ask1Price),
        ask_qty=Decimal(wire.ask1Size),
        ts=ms_to_utc(ts_ms),
    )


# ============================================================================================


def parse_market_message(
    msg: Any, symbols: SymbolMap, prev_update_id: int | None = None
) -> list[MarketEvent]:
    """Any decoded public message -> its model events, stateless, the symbol mapped through
    ``symbols`` (UnknownSymbol if it is not listed): an orderbook snapshot or delta, a trade
    batch (one ``Trade`` each), a ticker *snapshot* (``Ticker24h``, plus ``MarkPrice`` on
    linear), a kline batch. Linear ticker deltas need the state they apply to: merge them
    with ``merge_ticker`` first (``streams`` does). Empty for messages with no model."""
    market = symbols.market.value
    if isinstance(msg, OrderbookMessage):
        symbol = symbols.from_venue(msg.data.s)
        if replaces_book(msg):
            return [parse_orderbook_snapshot(msg, market, symbol)]
        return [parse_orderbook_delta(msg, market, symbol, prev_update_id)]
    if isinstance(msg, PublicTradeMessage):
        return [parse_trade(t, market, symbols.from_venue(t.s)) for t in msg.data]
    if isinstance(msg, KlineMessage):
        symbol = symbols.from_venue(msg.topic.rpartition(".")[2])
        return [parse_kline(bar, market, symbol) for bar in msg.data]
    if isinstance(msg, TickerMessage):
        if msg.type != "snapshot":
            raise ValueError("a linear ticker delta needs its snapshot: use merge_ticker")
        symbol = symbols.from_venue(msg.data.symbol)
        events: list[MarketEvent] = [parse_ticker(msg.data, market, symbol, msg.ts)]
        if symbols.market is Market.LINEAR:
            events.append(parse_mark_price(msg.data, market, symbol, msg.ts))
        return events
    return []
