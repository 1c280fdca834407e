"""Public trade history and what is derived from it: trades, aggTrades, klines, tickers,
book tickers and partial depth, for REST and for the market streams.

Everything is computed from the matching engine's batches, so a trade on a stream, in
/api/v3/trades, in a kline and in a user's fill are the same print. A taker's prints at one
price in one batch form one aggregate trade, as Binance aggregates "orders filled by one
taker order at the same price".
"""

import calendar
import datetime as dt
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from exconn.sim.accounts import Instrument
from exconn.sim.fixed import fmt_units
from exconn.sim.matching import Batch, OrderBook, Side, TradeEvent
from exconn.sim.symbols import SimSymbol
from exconn.sim.wire import SymbolWire, encode

MAX_TRADES = 50_000  # per symbol kept for REST history and 24 h statistics
DAY_MS = 86_400_000
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}
INTERVALS = (
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
)
_WEEK_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; Binance weeks open on Monday
Emit = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class Print:
    trade_id: int
    agg_id: int
    price: int
    qty: int
    time_ms: int
    buyer_is_maker: bool


def interval_bounds(interval: str, time_ms: int) -> tuple[int, int]:
    """[open, close] of the kline containing `time_ms` (close is inclusive, ends in 999)."""
    if interval == "1M":
        t = dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC)
        start = dt.datetime(t.year, t.month, 1, tzinfo=dt.UTC)
        days = calendar.monthrange(t.year, t.month)[1]
        open_ms = int(start.timestamp() * 1000)
        return open_ms, open_ms + days * DAY_MS - 1
    width = int(interval[:-1]) * _UNIT_MS[interval[-1]]
    offset = _WEEK_OFFSET_MS if interval[-1] == "w" else 0
    open_ms = (time_ms - offset) // width * width + offset
    return open_ms, open_ms + width - 1


class SymbolData:
    def __init__(
        self, sym: SimSymbol, engine: OrderBook, emit: Emit, wanted: Callable[[str], bool]
    ) -> None:
        self.sym = sym
        self.engine = engine
        self.wire = SymbolWire(sym)
        self.inst = Instrument.from_symbol(sym)
        self.prints: deque[Print] = deque(maxlen=MAX_TRADES)
        self.next_agg_id = 1
        self._emit = emit
        self._wanted = wanted
        self._prefix = sym.symbol.lower()
        self._top: tuple[int | None, int, int | None, int] = self._current_top()
        engine.subscribe(self._on_batch)

    # ------------------------------------------------------------ live events
    def _current_top(self) -> tuple[int | None, int, int | None, int]:
        bid, ask = self.engine.best_bid(), self.engine.best_ask()
        return (
            bid,
            self.engine.bids.get(bid, 0) if bid else 0,
            ask,
            self.engine.asks.get(ask, 0) if ask else 0,
        )

    def _on_batch(self, batch: Batch) -> None:
        groups: list[list[TradeEvent]] = []
        for trade in batch.trades:
            last = groups[-1][-1] if groups else None
            if last and last.taker_order_id == trade.taker_order_id and last.price == trade.price:
                groups[-1].append(trade)
            else:
                groups.append([trade])
        for group in groups:
            agg_id = self.next_agg_id
            self.next_agg_id += 1
            for t in group:
                self.prints.append(
                    Print(t.trade_id, agg_id, t.price, t.qty, t.time_ms, t.buyer_is_maker)
                )
                self._emit(
                    f"{self._prefix}@trade",
                    encode(
                        {
                            "e": "trade",
                            "E": t.time_ms,
                            "s": self.sym.symbol,
                            "t": t.trade_id,
                            "p": self.wire.price(t.price),
                            "q": self.wire.qty(t.qty),
                            "T": t.time_ms,
                            "m": t.buyer_is_maker,
                            "M": True,
                        }
                    ),
                )
            stream = f"{self._prefix}@aggTrade"
            if self._wanted(stream):
                self._emit(
                    stream,
                    encode(
                        {"e": "aggTrade", "E": batch.time_ms}
                        | {"s": self.sym.symbol, **self._agg_json(group, agg_id)}
                    ),
                )
        top = self._current_top()
        if top != self._top:
            self._top = top
            stream = f"{self._prefix}@bookTicker"
            if self._wanted(stream):
                self._emit(
                    stream,
                    encode(
                        {"u": self.engine.update_id, "s": self.sym.symbol}
                        | self._top_json("b", "B", "a", "A")
                    ),
                )

    def _agg_json(self, group: list[TradeEvent], agg_id: int) -> dict[str, Any]:
        first = group[0]
        return {
            "a": agg_id,
            "p": self.wire.price(first.price),
            "q": self.wire.qty(sum(t.qty for t in group)),
            "f": first.trade_id,
            "l": group[-1].trade_id,
            "T": first.time_ms,
            "m": first.buyer_is_maker,
            "M": True,
        }

    def _top_json(self, bp: str, bq: str, ap: str, aq: str) -> dict[str, str]:
        bid, bid_qty, ask, ask_qty = self._current_top()
        return {
            bp: self.wire.price(bid or 0),
            bq: self.wire.qty(bid_qty),
            ap: self.wire.price(ask or 0),
            aq: self.wire.qty(ask_qty),
        }

    # -------------------------------------------------------------------- REST
    def trades(self, limit: int) -> list[dict[str, Any]]:
        return [
            {
                "id": p.trade_id,
                "price": self.wire.price(p.price),
                "qty": self.wire.qty(p.qty),
                "quoteQty": self._quote(p.price * p.qty),
                "time": p.time_ms,
                "isBuyerMaker": p.buyer_is_maker,
                "isBestMatch": True,
            }
            for p in list(self.prints)[-limit:]
        ]

    def agg_trades(
        self, from_id: int | None, start: int | None, end: int | None, limit: int
    ) -> list[dict[str, Any]]:
        groups: dict[int, list[Print]] = {}
        for p in self.prints:
            groups.setdefault(p.agg_id, []).append(p)
        rows = []
        for agg_id, group in groups.items():
            first = group[0]
            if from_id is not None and agg_id < from_id:
                continue
            if start is not None and first.time_ms < start:
                continue
            if end is not None and first.time_ms > end:
                continue
            rows.append(
                {
                    "a": agg_id,
                    "p": self.wire.price(first.price),
                    "q": self.wire.qty(sum(p.qty for p in group)),
                    "f": first.trade_id,
                    "l": group[-1].trade_id,
                    "T": first.time_ms,
                    "m": first.buyer_is_maker,
                    "M": True,
                }
            )
        return rows[:limit] if from_id is not None or start is not None else rows[-limit:]

    def _quote(self, tick_steps: int) -> str:
        return fmt_units(self.inst.notional_units(tick_steps))

    def kline_rows(
        self, interval: str, start: int | None, end: int | None, limit: int
    ) -> list[list[Any]]:
        """Only intervals that saw trades (the simulator has no history before its start)."""
        buckets: dict[int, list[Print]] = {}
        for p in self.prints:
            if (start is None or p.time_ms >= start) and (end is None or p.time_ms <= end):
                buckets.setdefault(interval_bounds(interval, p.time_ms)[0], []).append(p)
        rows = [self._kline_row(interval, o, ps) for o, ps in sorted(buckets.items())]
        return rows[:limit] if start is not None else rows[-limit:]

    def _kline_row(self, interval: str, open_ms: int, ps: list[Print]) -> list[Any]:
        _, close_ms = interval_bounds(interval, open_ms)
        taker_buys = [p for p in ps if not p.buyer_is_maker]
        return [
            open_ms,
            self.wire.price(ps[0].price),
            self.wire.price(max(p.price for p in ps)),
            self.wire.price(min(p.price for p in ps)),
            self.wire.price(ps[-1].price),
            self.wire.qty(sum(p.qty for p in ps)),
            close_ms,
            self._quote(sum(p.price * p.qty for p in ps)),
            len(ps),
            self.wire.qty(sum(p.qty for p in taker_buys)),
            self._quote(sum(p.price * p.qty for p in taker_buys)),
            "0",
        ]

    def kline_event(self, interval: str, now_ms: int) -> dict[str, Any]:
        open_ms, close_ms = interval_bounds(interval, now_ms)
        ps = [p for p in self.prints if p.time_ms >= open_ms]
        if ps:
            row = self._kline_row(interval, open_ms, ps)
            first, last = ps[0].trade_id, ps[-1].trade_id
        else:
            last_price = self._last_price()
            row = [
                open_ms,
                last_price,
                last_price,
                last_price,
                last_price,
                "0.00000000",
                close_ms,
                "0.00000000",
                0,
                "0.00000000",
                "0.00000000",
                "0",
            ]
            first = last = -1
        return {
            "e": "kline",
            "E": now_ms,
            "s": self.sym.symbol,
            "k": {
                "t": open_ms,
                "T": close_ms,
                "s": self.sym.symbol,
                "i": interval,
                "f": first,
                "L": last,
                "o": row[1],
                "c": row[4],
                "h": row[2],
                "l": row[3],
                "v": row[5],
                "n": row[8],
                "x": False,
                "q": row[7],
                "V": row[9],
                "Q": row[10],
                "B": "0",
            },
        }

    def _last_price(self) -> str:
        if self.prints:
            return self.wire.price(self.prints[-1].price)
        return self.wire.price(self.sym.mid_ticks)

    def stats_24h(self, now_ms: int) -> dict[str, Any]:
        ps = [p for p in self.prints if p.time_ms > now_ms - DAY_MS]
        last = ps[-1].price if ps else (self.prints[-1].price if self.prints else 0)
        open_ = ps[0].price if ps else last
        volume = sum(p.qty for p in ps)
        quote = sum(p.price * p.qty for p in ps)
        change = last - open_
        pct = Decimal(change * 100) / Decimal(open_) if open_ else Decimal(0)
        wavg = Decimal(quote) / Decimal(volume) if volume else Decimal(0)
        tick = self.sym.tick_size
        return {
            "priceChange": ("-" if change < 0 else "") + self.wire.price(abs(change)),
            "priceChangePercent": f"{pct:.3f}",
            "weightedAvgPrice": f"{wavg * tick:.8f}",
            "prevClosePrice": self.wire.price(open_),
            "lastPrice": self.wire.price(last),
            "lastQty": self.wire.qty(ps[-1].qty if ps else 0),
            "openPrice": self.wire.price(open_),
            "highPrice": self.wire.price(max((p.price for p in ps), default=last)),
            "lowPrice": self.wire.price(min((p.price for p in ps), default=last)),
            "volume": self.wire.qty(volume),
            "quoteVolume": self._quote(quote),
            "openTime": now_ms - DAY_MS,
            "closeTime": now_ms,
            "firstId": ps[0].trade_id if ps else -1,
            "lastId": ps[-1].trade_id if ps else -1,
            "count": len(ps),
        }

    def ticker_rest(self, now_ms: int, mini: bool) -> dict[str, Any]:
        s = self.stats_24h(now_ms)
        if mini:
            keys = (
                "openPrice",
                "highPrice",
                "lowPrice",
                "lastPrice",
                "volume",
                "quoteVolume",
                "openTime",
                "closeTime",
                "firstId",
                "lastId",
                "count",
            )
            return {"symbol": self.sym.symbol} | {k: s[k] for k in keys}
        top = self._top_json("bidPrice", "bidQty", "askPrice", "askQty")
        ordered = (
            "priceChange",
            "priceChangePercent",
            "weightedAvgPrice",
            "prevClosePrice",
            "lastPrice",
            "lastQty",
        )
        return (
            {"symbol": self.sym.symbol}
            | {k: s[k] for k in ordered}
            | top
            | {k: v for k, v in s.items() if k not in ordered}
        )

    def ticker_event(self, now_ms: int, mini: bool) -> dict[str, Any]:
        s = self.stats_24h(now_ms)
        base = {"E": now_ms, "s": self.sym.symbol}
        ohlc = {
            "c": s["lastPrice"],
            "o": s["openPrice"],
            "h": s["highPrice"],
            "l": s["lowPrice"],
            "v": s["volume"],
            "q": s["quoteVolume"],
        }
        if mini:
            return {"e": "24hrMiniTicker"} | base | ohlc
        return (
            {"e": "24hrTicker"}
            | base
            | {
                "p": s["priceChange"],
                "P": s["priceChangePercent"],
                "w": s["weightedAvgPrice"],
                "x": s["prevClosePrice"],
                "c": s["lastPrice"],
                "Q": s["lastQty"],
            }
            | self._top_json("b", "B", "a", "A")
            | {
                "o": s["openPrice"],
                "h": s["highPrice"],
                "l": s["lowPrice"],
                "v": s["volume"],
                "q": s["quoteVolume"],
                "O": s["openTime"],
                "C": s["closeTime"],
                "F": s["firstId"],
                "L": s["lastId"],
                "n": s["count"],
            }
        )

    def price_ticker(self) -> dict[str, str]:
        return {"symbol": self.sym.symbol, "price": self._last_price()}

    def book_ticker(self) -> dict[str, Any]:
        return {"symbol": self.sym.symbol} | self._top_json(
            "bidPrice", "bidQty", "askPrice", "askQty"
        )

    def partial_depth(self, levels: int) -> bytes:
        bids = self.engine.prices(Side.BUY)[:levels]
        asks = self.engine.prices(Side.SELL)[:levels]
        return encode(
            {
                "lastUpdateId": self.engine.update_id,
                "bids": [[self.wire.price(p), self.wire.qty(self.engine.bids[p])] for p in bids],
                "asks": [[self.wire.price(p), self.wire.qty(self.engine.asks[p])] for p in asks],
            }
        )
