"""Binance wire types -> exconn model events and instruments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from exconn.messages import BookDeltaText, Level, Trade, TradeText
from exconn.model.enums import Exchange, Market, OrderSide
from exconn.model.instruments import Instrument
from exconn.model.symbols import make_symbol
from exconn.venues.binance.wire import ExchangeInfo, PriceLevel, TradeEvent

EXCHANGE = Exchange.BINANCE.value


def ms_to_utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


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


def parse_book_delta(
    bids: list[PriceLevel],
    asks: list[PriceLevel],
    market: str,
    symbol: str,
    prev_update_id: int,
    update_id: int,
    event_ms: int,
) -> BookDeltaText:
    """A diff already applied to the book, for subscribers; levels stay the exchange's strings
    until the subscriber decodes them as Decimal."""
    return BookDeltaText(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        prev_update_id=prev_update_id,
        update_id=update_id,
        bids=bids,
        asks=asks,
        ts=event_ms / 1000,
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
