"""Depth-limited order-book views with Bybit's update ids (bybit.md §7).

Each `orderbook.{depth}.{symbol}` topic has its own `u`, one per pushed message, shared by
every subscriber (as the recorded XRPUSDT sequence shows: `u` + 1 per message). A view is
the top `depth` levels per side as last published; a delta lists levels whose quantity
changed, appeared ("inserted") or left the view (size "0"), so a client applying the
documented rules to the snapshot and every delta holds exactly this view.
"""

import random
from dataclasses import dataclass, field

from exconn.sim.market import Book

DEPTHS = (1, 50, 200, 1000)  # spot and linear depths (orderbook.mdx, 2025-08 onwards)
REST_DEPTH = 1000  # REST `u` is the 1000-level stream's `u`
Levels = list[tuple[int, int]]


@dataclass(slots=True)
class Delta:
    u: int
    bids: Levels  # best first; qty 0 = remove
    asks: Levels


def top(side: dict[int, int], depth: int, descending: bool) -> dict[int, int]:
    return dict(sorted(side.items(), reverse=descending)[:depth])


def _diff(old: dict[int, int], new: dict[int, int], descending: bool) -> Levels:
    changed = [(p, q) for p, q in new.items() if old.get(p) != q]
    changed += [(p, 0) for p in old if p not in new]
    return sorted(changed, reverse=descending)


@dataclass(slots=True)
class DepthView:
    depth: int
    u: int
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)

    def advance(self, book: Book) -> Delta | None:
        """Move to the book's current top levels; a Delta when anything visible changed."""
        bids = top(book.bids, self.depth, True)
        asks = top(book.asks, self.depth, False)
        db, da = _diff(self.bids, bids, True), _diff(self.asks, asks, False)
        if not db and not da:
            return None
        self.bids, self.asks, self.u = bids, asks, self.u + 1
        return Delta(self.u, db, da)

    def levels(self, limit: int | None = None) -> tuple[Levels, Levels]:
        bids = sorted(self.bids.items(), reverse=True)
        asks = sorted(self.asks.items())
        if limit is not None:
            bids, asks = bids[:limit], asks[:limit]
        return bids, asks


class SymbolFeed:
    """All depth views of one (category, symbol)."""

    def __init__(self, category: str, symbol: str, seed: int, book: Book) -> None:
        self.views: dict[int, DepthView] = {}
        for depth in DEPTHS:
            rng = random.Random(f"{seed}/{category}/{symbol}/{depth}")
            # Far from 1: `u == 1` means "service restarted" to a Bybit client.
            view = DepthView(depth, rng.randrange(1_000_000, 50_000_000))
            view.bids = top(book.bids, depth, True)
            view.asks = top(book.asks, depth, False)
            self.views[depth] = view

    def advance(self, book: Book) -> dict[int, Delta]:
        out: dict[int, Delta] = {}
        for depth, view in self.views.items():
            delta = view.advance(book)
            if delta is not None:
                out[depth] = delta
        return out
