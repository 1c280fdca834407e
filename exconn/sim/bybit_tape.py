"""Public trades of one (category, symbol) and what is derived from them: klines, tickers.

The tape keeps the most recent trades (bounded), enough for recent-trade, 24 h ticker
statistics of a test-length run and klines; older history is simply not served.
"""

from collections import deque
from dataclasses import dataclass
from typing import Any

from exconn.sim.bybit_wire import Wire

MAX_TRADES = 20_000
DAY_MS = 86_400_000
INTERVAL_MS: dict[str, int] = {
    **{str(m): m * 60_000 for m in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)},
    "D": DAY_MS,
    "W": 7 * DAY_MS,
}  # "M" (calendar month) is not served


@dataclass(frozen=True, slots=True)
class TapeTrade:
    trade_id: int
    time_ms: int
    price: int
    qty: int
    taker_buy: bool
    seq: int
    direction: str


@dataclass(slots=True)
class Candle:
    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    notional: int


def kline_start(time_ms: int, interval: str) -> int:
    step = INTERVAL_MS[interval]
    # Weeks start on Monday: epoch day 0 was a Thursday, so shift by 4 days.
    offset = 4 * DAY_MS if interval == "W" else 0
    return (time_ms + offset) // step * step - offset


class Tape:
    def __init__(self, wire: Wire, mid_ticks: int) -> None:
        self.wire = wire
        self.trades: deque[TapeTrade] = deque(maxlen=MAX_TRADES)
        self._reference = mid_ticks

    def add(self, trade: TapeTrade) -> None:
        self.trades.append(trade)

    @property
    def last_price(self) -> int:
        return self.trades[-1].price if self.trades else self._reference

    def tick_direction(self, price: int) -> str:
        """Derivatives' `L` for a new trade at `price`, relative to the previous trade."""
        if not self.trades:
            return "ZeroPlusTick"
        prev = self.trades[-1]
        if price > prev.price:
            return "PlusTick"
        if price < prev.price:
            return "MinusTick"
        return "ZeroPlusTick" if prev.direction in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"

    def candles(self, interval: str, start: int | None, end: int | None) -> list[Candle]:
        """Candles oldest first; periods without trades are absent."""
        out: dict[int, Candle] = {}
        for t in self.trades:
            if (start is not None and t.time_ms < start) or (end is not None and t.time_ms > end):
                continue
            k = kline_start(t.time_ms, interval)
            c = out.get(k)
            if c is None:
                out[k] = Candle(k, t.price, t.price, t.price, t.price, t.qty, t.price * t.qty)
                continue
            c.high, c.low, c.close = max(c.high, t.price), min(c.low, t.price), t.price
            c.volume += t.qty
            c.notional += t.price * t.qty
        return [out[k] for k in sorted(out)]

    def current_candle(self, interval: str, now_ms: int) -> Candle:
        k = kline_start(now_ms, interval)
        found = [c for c in self.candles(interval, k, None) if c.start == k]
        if found:
            return found[0]
        p = self.last_price
        return Candle(k, p, p, p, p, 0, 0)

    def candle_json(self, c: Candle, interval: str, confirm: bool, now_ms: int) -> dict[str, Any]:
        w = self.wire
        return {
            "start": c.start,
            "end": c.start + INTERVAL_MS[interval] - 1,
            "interval": interval,
            "open": w.price(c.open),
            "close": w.price(c.close),
            "high": w.price(c.high),
            "low": w.price(c.low),
            "volume": w.qty(c.volume),
            "turnover": w.value(c.notional),
            "confirm": confirm,
            "timestamp": now_ms,
        }

    def day_stats(self, now_ms: int) -> dict[str, str]:
        w = self.wire
        day = [t for t in self.trades if t.time_ms > now_ms - DAY_MS]
        last = self.last_price
        prev = day[0].price if day else last
        pct = (last - prev) / prev if prev else 0.0
        return {
            "lastPrice": w.price(last),
            "prevPrice24h": w.price(prev),
            "price24hPcnt": f"{pct:.6f}",
            "highPrice24h": w.price(max((t.price for t in day), default=last)),
            "lowPrice24h": w.price(min((t.price for t in day), default=last)),
            "turnover24h": w.value(sum(t.price * t.qty for t in day)),
            "volume24h": w.qty(sum(t.qty for t in day)),
        }
