"""Exact conversions between Decimal and integer units of 1e-8.

Binance prints every price and quantity with 8 decimals, so one integer unit of 1e-8
lets the simulator keep integer ticks/steps internally and still format exactly.
"""

from decimal import Decimal

SCALE = 100_000_000
_SCALE_DEC = Decimal(SCALE)


def to_units(value: Decimal) -> int:
    """Return `value` in units of 1e-8; reject values finer than 8 decimals."""
    scaled = value * _SCALE_DEC
    units = int(scaled)
    if units != scaled:
        raise ValueError(f"{value} has more than 8 decimals")
    return units


def fmt_units(units: int) -> str:
    """Format non-negative units of 1e-8 like Binance: '61837.63000000'."""
    return f"{units // SCALE}.{units % SCALE:08d}"


def units_to_decimal(units: int) -> Decimal:
    # Built from the wire string so a client's Decimal(parsed) compares equal digit for digit.
    return Decimal(fmt_units(units))
