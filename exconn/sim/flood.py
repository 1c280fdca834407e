"""Pure generator of a long run of small depth diffs for throughput benchmarks.

Unlike `SymbolMarket.step` it spends exactly one update id per event and touches a fixed
number of distinct levels near the top, so a benchmark measures decoding and book
maintenance rather than the shape of the random process.
"""

import random
from collections.abc import Iterator

from exconn.sim.market import Book, DepthDiff

_MAX_DRAWS = 16  # redraws to find an untouched level before giving up on one change


def iter_flood(
    book: Book,
    n_updates: int,
    levels_per_update: int,
    levels: int,
    min_qty_steps: int,
    max_qty_steps: int,
    rng: random.Random,
) -> Iterator[DepthDiff]:
    """Yield `n_updates` diffs, mutating `book` so it ends as the final state.

    Each diff has U == u == previous u + 1 and changes at most `levels_per_update`
    distinct levels; the book never crosses and never empties a side.
    """
    if n_updates < 0 or levels_per_update < 1:
        raise ValueError("n_updates must be >= 0 and levels_per_update >= 1")
    best_bid, best_ask = book.best_bid(), book.best_ask()
    span = 2 * max(levels, 1)
    for _ in range(n_updates):
        bid_changes: dict[int, int] = {}
        ask_changes: dict[int, int] = {}
        for _ in range(levels_per_update):
            is_bid = rng.random() < 0.5
            side, changes = (book.bids, bid_changes) if is_bid else (book.asks, ask_changes)
            price = 0
            for _ in range(_MAX_DRAWS):
                offset = rng.randrange(-1, span)
                price = best_bid - offset if is_bid else best_ask + offset
                # Improving the best by a tick must not reach the other side.
                valid = (0 < price < best_ask) if is_bid else (price > best_bid)
                if valid and price not in changes:
                    break
                price = 0
            if not price:
                continue
            if price in side and len(side) > 1 and rng.random() < 0.5:
                qty = 0
                del side[price]
            else:
                qty = rng.randint(min_qty_steps, max_qty_steps)
                side[price] = qty
            changes[price] = qty
            # Best prices are tracked incrementally; only removing the best needs a scan.
            if is_bid:
                best_bid = max(side) if qty == 0 and price == best_bid else max(best_bid, price)
            else:
                best_ask = min(side) if qty == 0 and price == best_ask else min(best_ask, price)
        book.update_id += 1
        yield DepthDiff(
            first_id=book.update_id,
            last_id=book.update_id,
            bids=tuple(sorted(bid_changes.items(), reverse=True)),
            asks=tuple(sorted(ask_changes.items())),
        )
