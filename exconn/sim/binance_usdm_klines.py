"""Klines built from the public trade history the engine produced.

The history is bounded (`HISTORY` trades per symbol), so klines older than that come back
empty; a kline with no trades repeats the previous close with zero volume, as Binance does.
"""

from collections import deque
from decimal import Decimal
from typing import Any

from exconn.sim.binance_usdm_symbols import ContractFormat
from exconn.sim.market import Trade

HISTORY = 50_000
DAY_MS = 86_400_000
_MIN = 60_000
INTERVALS_MS: dict[str, int] = {
    "1m": _MIN,
    "3m": 3 * _MIN,
    "5m": 5 * _MIN,
    "15m": 15 * _MIN,
    "30m": 30 * _MIN,
    "1h": 60 * _MIN,
    "2h": 120 * _MIN,
    "4h": 240 * _MIN,
    "6h": 360 * _MIN,
    "8h": 480 * _MIN,
    "12h": 720 * _MIN,
    "1d": 1440 * _MIN,
    "3d": 3 * 1440 * _MIN,
    "1w": 7 * 1440 * _MIN,
}


class TradeHistory:
    def __init__(self, fmt: ContractFormat, start_price: int) -> None:
        self.fmt = fmt
        self.trades: deque[Trade] = deque(maxlen=HISTORY)
        self._start_price = start_price

    def add(self, trade: Trade) -> None:
        self.trades.append(trade)

    def recent(self, limit: int) -> list[Trade]:
        return list(self.trades)[-limit:] if limit else []

    def last_price(self, before_ms: int | None = None) -> int:
        for trade in reversed(self.trades):
            if before_ms is None or trade.time_ms < before_ms:
                return trade.price
        return self._start_price

    def agg_trades(
        self, from_id: int | None, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Trade]:
        """`GET /fapi/v1/aggTrades` rows: one fill is one aggregate here (as on the stream),
        so aggregate ids are trade ids. From `from_id` or `start_ms` on, the first `limit`;
        otherwise the latest `limit`."""
        rows = [
            t
            for t in self.trades
            if (from_id is None or t.trade_id >= from_id)
            and (start_ms is None or t.time_ms >= start_ms)
            and (end_ms is None or t.time_ms <= end_ms)
        ]
        return rows[:limit] if from_id is not None or start_ms is not None else rows[-limit:]

    def stats_24h(self, now_ms: int) -> dict[str, Any]:
        """Rolling 24 h statistics, named as `GET /fapi/v1/ticker/24hr` names them."""
        fmt = self.fmt
        window = [t for t in self.trades if t.time_ms > now_ms - DAY_MS]
        last = window[-1].price if window else self.last_price()
        open_ = window[0].price if window else last
        volume = sum(t.qty for t in window)
        notional = sum(t.qty * t.price for t in window)
        pct = Decimal((last - open_) * 100) / Decimal(open_) if open_ else Decimal(0)
        return {
            "priceChange": fmt.price(last - open_),
            "priceChangePercent": f"{pct:.3f}",
            "weightedAvgPrice": fmt.avg_price(notional, volume),
            "lastPrice": fmt.price(last),
            "lastQty": fmt.qty(window[-1].qty if window else 0),
            "openPrice": fmt.price(open_),
            "highPrice": fmt.price(max((t.price for t in window), default=last)),
            "lowPrice": fmt.price(min((t.price for t in window), default=last)),
            "volume": fmt.qty(volume),
            "quoteVolume": fmt.quote(notional),
            "openTime": now_ms - DAY_MS,
            "closeTime": now_ms,
            "firstId": window[0].trade_id if window else -1,
            "lastId": window[-1].trade_id if window else -1,
            "count": len(window),
        }

    def kline(self, open_ms: int, close_ms: int) -> dict[str, Any]:
        """The stream's `k` object for the kline [`open_ms`, `close_ms`]."""
        inside = [t for t in self.trades if open_ms <= t.time_ms <= close_ms]
        prev = self.last_price(open_ms)
        fmt = self.fmt
        prices = [t.price for t in inside] or [prev]
        volume = sum(t.qty for t in inside)
        quote = sum(t.qty * t.price for t in inside)
        taker_buy = [t for t in inside if not t.buyer_is_maker]
        return {
            "t": open_ms,
            "T": close_ms,
            "s": fmt.symbol,
            "i": "",
            "f": inside[0].trade_id if inside else -1,
            "L": inside[-1].trade_id if inside else -1,
            "o": fmt.price(prices[0]),
            "c": fmt.price(prices[-1]),
            "h": fmt.price(max(prices)),
            "l": fmt.price(min(prices)),
            "v": fmt.qty(volume),
            "n": len(inside),
            "x": False,
            "q": fmt.quote(quote),
            "V": fmt.qty(sum(t.qty for t in taker_buy)),
            "Q": fmt.quote(sum(t.qty * t.price for t in taker_buy)),
            "B": "0",
        }

    def rest_klines(
        self,
        interval_ms: int,
        limit: int,
        start_ms: int | None,
        end_ms: int | None,
        now_ms: int,
    ) -> list[list[Any]]:
        last_open = (now_ms // interval_ms) * interval_ms
        if end_ms is not None:
            last_open = min(last_open, (end_ms // interval_ms) * interval_ms)
        first_open = last_open - (limit - 1) * interval_ms
        if start_ms is not None:
            first_open = max(first_open, -(-start_ms // interval_ms) * interval_ms)
        rows: list[list[Any]] = []
        for index in range(limit):  # bounded by the requested limit
            open_ms = first_open + index * interval_ms
            if open_ms > last_open:
                break
            k = self.kline(open_ms, open_ms + interval_ms - 1)
            rows.append(
                [
                    k["t"],
                    k["o"],
                    k["h"],
                    k["l"],
                    k["c"],
                    k["v"],
                    k["T"],
                    k["q"],
                    k["n"],
                    k["V"],
                    k["Q"],
                    "0",
                ]
            )
        return rows
