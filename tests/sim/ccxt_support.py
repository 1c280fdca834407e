"""Helpers shared by the ccxt acceptance tests (ccxt returns floats; we compare Decimals)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def to_decimal(value: Any) -> Decimal:
    # ccxt hands numbers back as floats; repr round-trips the venues' 8-dp strings exactly
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def top_levels(levels: list[tuple[Decimal, Decimal]], n: int) -> list[tuple[Decimal, Decimal]]:
    return [(p.normalize(), q.normalize()) for p, q in levels[:n]]


def ccxt_levels(levels: list[list[Any]]) -> list[tuple[Decimal, Decimal]]:
    return [(to_decimal(p).normalize(), to_decimal(q).normalize()) for p, q, *_ in levels]


def walk_cost(levels: list[tuple[Decimal, Decimal]], qty: Decimal) -> Decimal:
    """Quote amount of taking ``qty`` from the simulator's published levels, best first."""
    cost, left = Decimal(0), qty
    for price, size in levels:
        take = min(left, size)
        cost, left = cost + take * price, left - take
        if not left:
            return cost
    raise AssertionError("book too thin for the test order")


def balance(ex: Any, asset: str) -> tuple[Decimal, Decimal]:
    """(total, used) as ccxt reports them."""
    entry = ex.fetch_balance()[asset]
    return to_decimal(entry["total"]), to_decimal(entry["used"] or 0)
