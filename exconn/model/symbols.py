"""Normalized symbols and the venue <-> normalized mapping.

A normalized symbol names the instrument the same way on every venue: spot ``BTC/USDT``,
derivatives ``BTC/USDT:USDT`` (BASE/QUOTE:SETTLE). Venue symbols (``BTCUSDT``, ``BTCPERP``) are
mapped from instrument metadata only: splitting ``BTCUSDT`` by guessing where the quote starts
breaks on the first ``1000SHIBUSDT`` or ``BTCPERP``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from exconn.errors import InvalidSymbol, UnknownSymbol
from exconn.model.enums import Exchange, Market

if TYPE_CHECKING:
    from exconn.model.instruments import Instrument

__all__ = ["SymbolMap", "make_symbol", "parse_symbol"]


def _asset(value: object, role: str, symbol: object) -> str:
    if not isinstance(value, str) or not value or not value.isalnum():
        where = f" in symbol {symbol!r}" if symbol is not None else ""
        raise InvalidSymbol(
            f"{role} asset {value!r}{where} must be a non-empty run of letters and digits"
        )
    return value


def make_symbol(base: str, quote: str, settle: str | None = None) -> str:
    """``BASE/QUOTE`` or ``BASE/QUOTE:SETTLE``, upper-cased. Raises InvalidSymbol."""
    b = _asset(base, "base", None).upper()
    q = _asset(quote, "quote", None).upper()
    if settle is None:
        return f"{b}/{q}"
    return f"{b}/{q}:{_asset(settle, 'settle', None).upper()}"


def parse_symbol(symbol: str) -> tuple[str, str, str | None]:
    """``(base, quote, settle)`` of a normalized symbol; settle is None for spot.

    Raises InvalidSymbol for anything ``make_symbol`` would not produce, including lower case:
    symbols are lookup keys, and ``btc/usdt`` would silently miss.
    """
    if not isinstance(symbol, str):
        raise InvalidSymbol(f"symbol must be a str, not {type(symbol).__name__}")
    pair, colon, settle = symbol.partition(":")
    base, slash, quote = pair.partition("/")
    if not slash:
        raise InvalidSymbol(f"symbol {symbol!r} must look like 'BTC/USDT' or 'BTC/USDT:USDT'")
    _asset(base, "base", symbol)
    _asset(quote, "quote", symbol)
    if colon:
        _asset(settle, "settle", symbol)
    if symbol != symbol.upper():
        raise InvalidSymbol(f"symbol {symbol!r} must be upper-case: {symbol.upper()!r}")
    return base, quote, (settle if colon else None)


class SymbolMap:
    """Normalized symbol <-> venue symbol for one exchange and market, both ways, O(1).

    Built from instruments (``from_instruments``) or pair by pair (``add``); never inferred
    from the strings.
    """

    __slots__ = ("_from_venue", "_to_venue", "exchange", "market")

    def __init__(self, exchange: Exchange, market: Market) -> None:
        self.exchange = Exchange(exchange)
        self.market = Market(market)
        self._to_venue: dict[str, str] = {}
        self._from_venue: dict[str, str] = {}

    @classmethod
    def from_instruments(cls, instruments: Iterable[Instrument]) -> SymbolMap:
        """A map of these instruments, which must all share one exchange and market."""
        items = list(instruments)
        if not items:
            raise ValueError("SymbolMap.from_instruments needs at least one instrument")
        first = items[0]
        result = cls(first.exchange, first.market)
        for inst in items:
            if inst.exchange != result.exchange or inst.market != result.market:
                raise ValueError(
                    f"instrument {inst.symbol!r} is {inst.exchange} {inst.market}; this map is "
                    f"{result.exchange} {result.market}"
                )
            result.add(inst.symbol, inst.venue_symbol)
        return result

    def add(self, symbol: str, venue_symbol: str) -> None:
        """Map ``symbol`` <-> ``venue_symbol``. Re-adding the same pair is a no-op; mapping either
        side to something else raises ValueError (two instruments must not share a name)."""
        parse_symbol(symbol)
        if not isinstance(venue_symbol, str) or not venue_symbol:
            raise ValueError(f"venue symbol for {symbol!r} must be a non-empty str")
        known_venue = self._to_venue.get(symbol)
        known_symbol = self._from_venue.get(venue_symbol)
        if known_venue == venue_symbol and known_symbol == symbol:
            return
        if known_venue is not None or known_symbol is not None:
            raise ValueError(
                f"{self.exchange} {self.market}: cannot map {symbol!r} <-> {venue_symbol!r}; "
                f"already {symbol!r} -> {known_venue!r} and {venue_symbol!r} -> {known_symbol!r}"
            )
        self._to_venue[symbol] = venue_symbol
        self._from_venue[venue_symbol] = symbol

    def to_venue(self, symbol: str) -> str:
        """The venue's name for ``symbol``; UnknownSymbol if not listed."""
        try:
            return self._to_venue[symbol]
        except KeyError:
            raise UnknownSymbol(exchange=self.exchange, market=self.market, symbol=symbol) from None

    def from_venue(self, venue_symbol: str) -> str:
        """The normalized symbol for the venue's ``venue_symbol`` (exact, case-sensitive);
        UnknownSymbol if not listed."""
        try:
            return self._from_venue[venue_symbol]
        except KeyError:
            raise UnknownSymbol(
                exchange=self.exchange, market=self.market, venue_symbol=venue_symbol
            ) from None

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._to_venue

    def symbols(self) -> list[str]:
        return sorted(self._to_venue)

    def __len__(self) -> int:
        return len(self._to_venue)

    def __repr__(self) -> str:
        return f"SymbolMap({self.exchange}, {self.market}, {len(self)} symbols)"
