"""Instruments and their trading rules: tick and step grids, size and notional limits.

An order is checked here before anything leaves the process, so a rule the exchange would reject
(``-1013 Filter failure``) costs a function call instead of a request and a rate-limit unit.
All arithmetic is exact: rounding works on integer ratios, never on floats or a rounded context.
A tick, step or limit of 0 means "no constraint", as the exchanges publish it.
"""

from __future__ import annotations

from decimal import (
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Underflow,
)

import msgspec

from exconn.errors import InvalidOrder
from exconn.model.decimal import format_decimal, require_decimal
from exconn.model.enums import Exchange, Market, OrderSide, OrderType
from exconn.model.symbols import make_symbol

__all__ = [
    "Instrument",
    "price_to_ticks",
    "round_price",
    "round_qty",
    "ticks_to_price",
    "validate_order",
]

# Far more digits than any real price/tick ratio; anything that would still need rounding traps
# instead of being rounded silently.
_EXACT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Inexact, Overflow, Underflow])


class Instrument(msgspec.Struct, frozen=True):
    """One tradable instrument as the exchange lists it, in exconn's vocabulary.

    ``symbol`` is normalized (``BTC/USDT``, ``BTC/USDT:USDT``) and must agree with base, quote
    and settle; ``venue_symbol`` is the exchange's own name. ``status`` is the venue status
    lower-cased; only ``"trading"`` accepts orders.
    """

    exchange: Exchange
    market: Market
    symbol: str
    venue_symbol: str
    base: str
    quote: str
    settle: str | None
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal | None = None
    min_notional: Decimal | None = None
    max_notional: Decimal | None = None
    status: str = "trading"

    def __post_init__(self) -> None:
        # A symbol that disagrees with its assets would route orders to the wrong instrument.
        expected = make_symbol(self.base, self.quote, self.settle)
        if self.symbol != expected:
            raise ValueError(
                f"instrument symbol {self.symbol!r} does not match its assets: {expected!r}"
            )
        if not self.venue_symbol:
            raise ValueError(f"instrument {self.symbol!r} has an empty venue symbol")
        for name in (
            "tick_size",
            "step_size",
            "min_qty",
            "max_qty",
            "min_notional",
            "max_notional",
        ):
            value = getattr(self, name)
            if value is not None and require_decimal(value, name) < 0:
                raise ValueError(f"instrument {self.symbol!r}: {name} must be >= 0, not {value}")


def _ratio(value: Decimal, step: Decimal) -> tuple[int, int]:
    """``value / step`` as an exact fraction ``num / den`` with ``den > 0`` (step > 0)."""
    vn, vd = value.as_integer_ratio()
    sn, sd = step.as_integer_ratio()
    return vn * sd, vd * sn


def price_to_ticks(price: Decimal, tick: Decimal) -> int:
    """``price`` as an integer number of ``tick`` (exact). ValueError if the tick is not positive
    or the price is off the grid."""
    if not tick > 0:
        raise ValueError(f"tick must be > 0, not {tick}")
    try:
        count, rest = _EXACT.divmod(price, tick)
    except ArithmeticError:
        raise ValueError(f"price {price} is not a whole number of ticks of {tick}") from None
    if rest:
        raise ValueError(f"price {price} is not a whole number of ticks of {tick}")
    return int(count)


def ticks_to_price(ticks: int, tick: Decimal) -> Decimal:
    """``ticks * tick`` exactly, with the tick's number of decimal places."""
    if isinstance(ticks, bool) or not isinstance(ticks, int):
        raise TypeError(f"ticks must be an int, not {type(ticks).__name__}")
    try:
        return _EXACT.multiply(Decimal(ticks), tick)
    except ArithmeticError:
        raise ValueError(f"{ticks} ticks of {tick} is not exactly representable") from None


def _floor_div(num: int, den: int) -> int:
    return num // den


def _ceil_div(num: int, den: int) -> int:
    return -((-num) // den)


def _half_even_div(num: int, den: int) -> int:
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q % 2):
        q += 1
    return q


def round_price(instrument: Instrument, price: Decimal, side: OrderSide | None = None) -> Decimal:
    """``price`` on the instrument's tick grid, never worse than asked for that side: a BUY
    rounds down, a SELL rounds up; without a side, to the nearest tick (ties to even)."""
    price = require_decimal(price, "price")
    tick = instrument.tick_size
    if not tick:
        return price
    num, den = _ratio(price, tick)
    if side is None:
        count = _half_even_div(num, den)
    elif OrderSide(side) is OrderSide.BUY:
        count = _floor_div(num, den)
    else:
        count = _ceil_div(num, den)
    return ticks_to_price(count, tick)


def round_qty(instrument: Instrument, qty: Decimal) -> Decimal:
    """``qty`` rounded toward zero to a multiple of the step size: never more than asked."""
    qty = require_decimal(qty, "qty")
    step = instrument.step_size
    if not step:
        return qty
    num, den = _ratio(qty, step)
    count = _floor_div(num, den) if num >= 0 else _ceil_div(num, den)
    return ticks_to_price(count, step)


def _on_grid(value: Decimal, step: Decimal) -> bool:
    num, den = _ratio(value, step)
    return num % den == 0


def _notional(qty: Decimal, price: Decimal) -> Decimal:
    # Exact product: enough precision for every digit of both factors.
    digits = len(qty.as_tuple().digits) + len(price.as_tuple().digits)
    return Context(prec=max(digits, 1)).multiply(qty, price)


def _fail(instrument: Instrument, text: str) -> InvalidOrder:
    return InvalidOrder(
        f"{instrument.symbol} ({instrument.venue_symbol}): {text}",
        exchange=instrument.exchange,
        market=instrument.market,
    )


def validate_order(
    instrument: Instrument,
    side: OrderSide,
    order_type: OrderType,
    qty: Decimal,
    price: Decimal | None,
) -> None:
    """Check an order against the instrument's rules; raises InvalidOrder naming the rule and
    the allowed value. It does not round: sending something other than what the engine asked
    for is the engine's decision (see ``round_price`` and ``round_qty``).

    A LIMIT order needs a price. For a MARKET order ``price``, if given, is only a reference
    price for the notional limits (they cannot be checked without one) and is not tick-checked.
    """
    side = OrderSide(side)
    order_type = OrderType(order_type)
    qty = require_decimal(qty, "qty")
    if price is not None:
        price = require_decimal(price, "price")
    i = instrument
    if i.status != "trading":
        raise _fail(i, f"instrument is not trading (status {i.status!r})")
    if qty <= 0:
        raise _fail(i, f"qty must be > 0, not {qty}")
    if order_type is OrderType.LIMIT:
        if price is None:
            raise _fail(i, "a limit order needs a price")
        if price <= 0:
            raise _fail(i, f"price must be > 0, not {price}")
        if i.tick_size and not _on_grid(price, i.tick_size):
            raise _fail(
                i,
                f"price {price} is not a multiple of tick size {format_decimal(i.tick_size)}; "
                f"round_price gives {format_decimal(round_price(i, price, side))} for a {side}",
            )
    elif price is not None and price <= 0:
        raise _fail(i, f"reference price must be > 0, not {price}")
    if i.step_size and not _on_grid(qty, i.step_size):
        raise _fail(
            i,
            f"qty {qty} is not a multiple of step size {format_decimal(i.step_size)}; "
            f"round_qty gives {format_decimal(round_qty(i, qty))}",
        )
    if i.min_qty and qty < i.min_qty:
        raise _fail(i, f"qty {qty} is below min_qty {format_decimal(i.min_qty)}")
    if i.max_qty and qty > i.max_qty:
        raise _fail(i, f"qty {qty} is above max_qty {format_decimal(i.max_qty)}")
    if price is None:
        return
    notional = _notional(qty, price)
    if i.min_notional and notional < i.min_notional:
        raise _fail(
            i,
            f"notional {format_decimal(notional)} (qty x price) is below min_notional "
            f"{format_decimal(i.min_notional)}",
        )
    if i.max_notional and notional > i.max_notional:
        raise _fail(
            i,
            f"notional {format_decimal(notional)} (qty x price) is above max_notional "
            f"{format_decimal(i.max_notional)}",
        )
