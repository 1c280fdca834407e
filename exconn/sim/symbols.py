"""Symbol definitions served by the simulator."""

from dataclasses import dataclass
from decimal import Decimal

from exconn.sim.fixed import to_units


@dataclass(frozen=True, slots=True)
class SimSymbol:
    """One spot symbol: exchange filters plus the mid price the book starts around."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    mid: Decimal
    max_price: Decimal = Decimal("1000000")
    max_qty: Decimal = Decimal("9000")
    max_notional: Decimal = Decimal("9000000")

    def __post_init__(self) -> None:
        if not self.symbol or self.symbol != self.symbol.upper():
            raise ValueError(f"symbol must be upper case and non-empty: {self.symbol!r}")
        for name in ("tick_size", "step_size", "mid"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
            to_units(value)  # raises if finer than the 8 decimals the wire can carry
        if self.min_qty < 0 or self.min_qty % self.step_size != 0:
            raise ValueError("min_qty must be a non-negative multiple of step_size")

    @property
    def stream_prefix(self) -> str:
        return self.symbol.lower()

    @property
    def tick_units(self) -> int:
        return to_units(self.tick_size)

    @property
    def step_units(self) -> int:
        return to_units(self.step_size)

    @property
    def mid_ticks(self) -> int:
        # Rounded down onto the tick grid; a mid off the grid is a convenience, not an error.
        return max(1, int(self.mid / self.tick_size))

    @property
    def min_qty_steps(self) -> int:
        return max(1, int(self.min_qty / self.step_size))

    @property
    def max_level_steps(self) -> int:
        """Largest random level size: about 50k quote units, at least 10 x min_qty."""
        steps = int(Decimal(50_000) / self.mid / self.step_size)
        return max(self.min_qty_steps * 10, steps)


DEFAULT_SYMBOLS: tuple[SimSymbol, ...] = (
    SimSymbol(
        symbol="BTCUSDT",
        base="BTC",
        quote="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.00001"),
        min_qty=Decimal("0.00001"),
        min_notional=Decimal("5"),
        mid=Decimal("60000"),
    ),
    SimSymbol(
        symbol="ETHUSDT",
        base="ETH",
        quote="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.0001"),
        min_qty=Decimal("0.0001"),
        min_notional=Decimal("5"),
        mid=Decimal("3000"),
    ),
    SimSymbol(
        symbol="SOLUSDT",
        base="SOL",
        quote="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        min_notional=Decimal("5"),
        mid=Decimal("150"),
    ),
)
