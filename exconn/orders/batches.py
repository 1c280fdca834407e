"""Splitting several order commands into venue batch requests, pure.

A batch request holds commands of one market (Bybit: one category) and at most the venue's
limit of them (``BATCH_MAX`` in the venue's ``order_entry``); commands are kept in the order
the engine gave them, inside each market.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")

__all__ = ["batches"]


def batches(
    items: Iterable[T], market_of: Callable[[T], str], limit_of: Callable[[str], int]
) -> list[tuple[str, list[T]]]:
    """``items`` grouped by market (first appearance order) and cut into chunks of at most
    ``limit_of(market)`` (>= 1), each ``(market, chunk)``."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(market_of(item), []).append(item)
    out: list[tuple[str, list[T]]] = []
    for market, group in groups.items():
        limit = limit_of(market)
        if limit < 1:
            raise ValueError(f"batch limit for {market} must be >= 1, not {limit}")
        out.extend((market, list(group[i : i + limit])) for i in range(0, len(group), limit))
    return out


def flatten(chunks: Sequence[tuple[str, list[T]]]) -> list[T]:
    return [item for _, chunk in chunks for item in chunk]
