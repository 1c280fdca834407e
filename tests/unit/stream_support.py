"""What the stream-handler tests of every venue share: instruments built the same way, the
subscriber names, and what a subscriber receives from an ``Outbox``."""

from __future__ import annotations

from decimal import Decimal

from exconn.model.enums import Exchange, Market
from exconn.model.instruments import Instrument
from exconn.model.symbols import make_symbol
from exconn.outbox import Outbox

SUB = "subscriber-1"
OTHER = "subscriber-2"


def instrument(
    exchange: Exchange,
    market: Market,
    base: str,
    quote: str,
    *,
    tick: str,
    step: str,
    min_qty: str | None = None,
) -> Instrument:
    """A perpetual on ``Market.LINEAR`` (settled in ``quote``), a spot pair otherwise;
    ``min_qty`` defaults to one ``step``."""
    settle = quote if market is Market.LINEAR else None
    return Instrument(
        exchange=exchange,
        market=market,
        symbol=make_symbol(base, quote, settle),
        venue_symbol=base + quote,
        base=base,
        quote=quote,
        settle=settle,
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_qty=Decimal(step if min_qty is None else min_qty),
    )


def delivered(out: Outbox) -> dict[str, list]:
    """Everything delivered, per subscriber, as each decodes its batch (empties ``out``)."""
    return {address: list(batch.events) for address, batch in out.drain()}


def events(out: Outbox, who: str = SUB) -> list:
    """What ``who`` receives (empties ``out``)."""
    return delivered(out).get(who, [])
