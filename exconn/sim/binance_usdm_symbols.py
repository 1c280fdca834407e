"""USD-M contract definitions and their wire formatting (symbol precision, not 8 decimals).

USD-M prints prices and quantities with the contract's own precision ("7403.89", "0.002"),
unlike spot's fixed 8 decimals, so each contract carries a formatter.
"""

from decimal import ROUND_HALF_UP, Decimal

from exconn.sim.fixed import SCALE, fmt_units
from exconn.sim.symbols import SimSymbol


def decimals_of(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def fmt_fixed(units: int, decimals: int) -> str:
    """Units of 1e-8 with `decimals` decimals; digits beyond are cut (callers stay on grid)."""
    text = fmt_units(abs(units))
    whole, frac = text.split(".")
    body = whole if decimals == 0 else f"{whole}.{frac[:decimals]}"
    return f"-{body}" if units < 0 and body.strip("0.") else body


def fmt_decimal(value: Decimal, decimals: int = 8) -> str:
    quantum = Decimal(1).scaleb(-decimals)
    text = str(value.quantize(quantum, rounding=ROUND_HALF_UP))
    return text[1:] if text.startswith("-") and not Decimal(text) else text


class ContractFormat:
    """Formats one contract's ticks, steps and notionals for the wire."""

    def __init__(self, sym: SimSymbol) -> None:
        self.symbol = sym.symbol
        self.tick_units = sym.tick_units
        self.step_units = sym.step_units
        self.price_decimals = decimals_of(sym.tick_size)
        self.qty_decimals = decimals_of(sym.step_size)

    def price(self, ticks: int) -> str:
        return fmt_fixed(ticks * self.tick_units, self.price_decimals)

    def qty(self, steps: int) -> str:
        return fmt_fixed(steps * self.step_units, self.qty_decimals)

    def notional_units(self, tick_steps: int) -> int:
        return tick_steps * self.tick_units * self.step_units // SCALE

    def quote(self, tick_steps: int) -> str:
        return fmt_units(self.notional_units(tick_steps))

    def avg_price(self, notional: int, qty: int) -> str:
        if qty == 0:
            return fmt_fixed(0, self.price_decimals)
        value = Decimal(notional * self.tick_units) / Decimal(qty) / SCALE
        return fmt_decimal(value, max(self.price_decimals, 5))

    def levels(self, levels: tuple[tuple[int, int], ...]) -> list[list[str]]:
        return [[self.price(p), self.qty(q)] for p, q in levels]

    def parse_price(self, text: str) -> int | None:
        """Ticks, or None when not on the tick grid (Binance: -1111 precision)."""
        return _on_grid(text, self.tick_units)

    def parse_qty(self, text: str) -> int | None:
        return _on_grid(text, self.step_units)


def _on_grid(text: str, unit: int) -> int | None:
    try:
        value = Decimal(text) * SCALE
    except ArithmeticError:
        return None
    if not value.is_finite() or value != value.to_integral_value():
        return None
    units = int(value)
    return units // unit if units % unit == 0 else None


USDM_SYMBOLS: tuple[SimSymbol, ...] = (
    SimSymbol(
        symbol="BTCUSDT",
        base="BTC",
        quote="USDT",
        tick_size=Decimal("0.10"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        min_notional=Decimal("100"),
        mid=Decimal("60000"),
        max_qty=Decimal("1000"),
    ),
    SimSymbol(
        symbol="ETHUSDT",
        base="ETH",
        quote="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        min_notional=Decimal("20"),
        mid=Decimal("3000"),
        max_qty=Decimal("10000"),
    ),
)
