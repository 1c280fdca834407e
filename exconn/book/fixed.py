"""Exact conversion between exchange decimal strings and scaled integers.

Books key levels by ``int(price * 10**scale)``: exact (every wire price has at most ``scale``
decimals) and about four times faster than Decimal keys. Integers are also not tracked by the
garbage collector, which keeps collection pauses short on large books.
"""

from __future__ import annotations

from decimal import Decimal


def parse_scaled(text: str, scale: int) -> int:
    """``"61837.63000000"`` with scale 8 -> ``6183763000000``; raises ValueError if ``text`` has
    non-zero digits beyond ``scale`` (the value would not be exact)."""
    whole, _, frac = text.partition(".")
    n = len(frac)
    if n == scale:
        return int(whole + frac)
    if n < scale:
        return int(whole + frac + "0" * (scale - n))
    if frac[scale:].strip("0"):
        raise ValueError(f"{text!r} has more than {scale} decimals")
    return int(whole + frac[:scale])


def scaled_to_decimal(value: int, scale: int) -> Decimal:
    return Decimal(value).scaleb(-scale)


def decimals_of(step: Decimal) -> int:
    """Number of decimals needed to represent multiples of ``step`` exactly."""
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)
