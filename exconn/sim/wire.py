"""Binance spot JSON payloads built from the integer market model."""

from decimal import Decimal

import msgspec

from exconn.sim.fixed import fmt_units, units_to_decimal
from exconn.sim.market import BookSnapshot, DepthDiff, Level, Trade
from exconn.sim.symbols import SimSymbol

_encode = msgspec.json.Encoder().encode
_CACHE_LIMIT = 200_000  # formatted strings kept per symbol; a flood revisits the same prices

DecimalLevel = tuple[Decimal, Decimal]


class SymbolWire:
    """Formats one symbol's ticks and steps as Binance 8-decimal strings."""

    def __init__(self, symbol: SimSymbol) -> None:
        self.symbol = symbol.symbol
        self._tick_units = symbol.tick_units
        self._step_units = symbol.step_units
        self._prices: dict[int, str] = {}
        self._qtys: dict[int, str] = {}

    def price(self, ticks: int) -> str:
        text = self._prices.get(ticks)
        if text is None:
            if len(self._prices) >= _CACHE_LIMIT:
                self._prices.clear()
            text = self._prices[ticks] = fmt_units(ticks * self._tick_units)
        return text

    def qty(self, steps: int) -> str:
        text = self._qtys.get(steps)
        if text is None:
            if len(self._qtys) >= _CACHE_LIMIT:
                self._qtys.clear()
            text = self._qtys[steps] = fmt_units(steps * self._step_units)
        return text

    def levels(self, levels: tuple[Level, ...]) -> list[list[str]]:
        return [[self.price(p), self.qty(q)] for p, q in levels]

    def decimal_levels(self, levels: tuple[Level, ...]) -> list[DecimalLevel]:
        return [
            (units_to_decimal(p * self._tick_units), units_to_decimal(q * self._step_units))
            for p, q in levels
        ]

    def depth_update(self, diff: DepthDiff, time_ms: int) -> bytes:
        return _encode(
            {
                "e": "depthUpdate",
                "E": time_ms,
                "s": self.symbol,
                "U": diff.first_id,
                "u": diff.last_id,
                "b": self.levels(diff.bids),
                "a": self.levels(diff.asks),
            }
        )

    def trade(self, trade: Trade) -> bytes:
        return _encode(
            {
                "e": "trade",
                "E": trade.time_ms,
                "s": self.symbol,
                "t": trade.trade_id,
                "p": self.price(trade.price),
                "q": self.qty(trade.qty),
                "T": trade.time_ms,
                "m": trade.buyer_is_maker,
                "M": True,
            }
        )

    def depth_snapshot(self, snap: BookSnapshot) -> bytes:
        return _encode(
            {
                "lastUpdateId": snap.last_update_id,
                "bids": self.levels(snap.bids),
                "asks": self.levels(snap.asks),
            }
        )


def combined(stream: str, payload: bytes) -> bytes:
    """Wrap a raw payload as a combined-stream event; `stream` is always a name we emit."""
    return b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}"


def encode(obj: object) -> bytes:
    return _encode(obj)
