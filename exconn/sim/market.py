"""Deterministic, seeded spot market model: no I/O, no clock, integer ticks and steps.

Prices are integer ticks and quantities integer steps of the symbol's grid, so the book is
exact and every wire string is derived from it without rounding. Each change to a level
consumes one update id; one `Interval` aggregates the changes of one depth cadence.
"""

import random
from dataclasses import dataclass, field

Level = tuple[int, int]  # (price ticks, qty steps); qty 0 in a diff means "remove"


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """What the model needs to know about one symbol, in grid units."""

    symbol: str
    mid_ticks: int
    min_qty_steps: int
    max_qty_steps: int


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: int
    price: int
    qty: int
    buyer_is_maker: bool
    time_ms: int


@dataclass(frozen=True, slots=True)
class DepthDiff:
    """One depthUpdate: ids first_id..last_id, bids best first, asks best first."""

    first_id: int
    last_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class Interval:
    symbol: str
    time_ms: int
    diff: DepthDiff
    trades: tuple[Trade, ...]


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(slots=True)
class Book:
    """Both sides of one symbol's book plus the id of the last change applied."""

    update_id: int
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)

    def best_bid(self) -> int:
        return max(self.bids)

    def best_ask(self) -> int:
        return min(self.asks)

    def is_crossed(self) -> bool:
        return bool(self.bids) and bool(self.asks) and self.best_bid() >= self.best_ask()

    def snapshot(self, limit: int | None = None) -> BookSnapshot:
        bids = sorted(self.bids.items(), reverse=True)
        asks = sorted(self.asks.items())
        if limit is not None:
            bids, asks = bids[:limit], asks[:limit]
        return BookSnapshot(self.update_id, tuple(bids), tuple(asks))

    def copy(self) -> "Book":
        return Book(self.update_id, dict(self.bids), dict(self.asks))

    def apply(self, diff: DepthDiff) -> None:
        """Apply a diff the way a Binance client does (absolute quantities, 0 removes)."""
        for side, levels in ((self.bids, diff.bids), (self.asks, diff.asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.update_id = diff.last_id


class SymbolMarket:
    """The book of one symbol and the random process that moves it."""

    # Probabilities of each change kind, cumulative; the rest are level removals.
    _P_TRADE = 0.12
    _P_MODIFY = 0.60
    _P_ADD = 0.80
    _MAX_CHANGES = 4

    def __init__(
        self, spec: MarketSpec, levels: int, rng: random.Random, first_update_id: int,
        first_trade_id: int,
    ) -> None:
        if levels < 1:
            raise ValueError("levels must be >= 1")
        self.spec = spec
        self.levels = levels
        self._rng = rng
        self._next_trade_id = first_trade_id
        self.book = self._initial_book(first_update_id)

    @property
    def next_trade_id(self) -> int:
        return self._next_trade_id

    def _initial_book(self, update_id: int) -> Book:
        book = Book(update_id)
        bid, ask = self.spec.mid_ticks, self.spec.mid_ticks + 1
        for _ in range(self.levels):
            if bid > 0:
                book.bids[bid] = self._random_qty()
                bid -= self._rng.randint(1, 3)
            book.asks[ask] = self._random_qty()
            ask += self._rng.randint(1, 3)
        return book

    def _random_qty(self) -> int:
        return self._rng.randint(self.spec.min_qty_steps, self.spec.max_qty_steps)

    def replace_book(self, book: Book) -> None:
        """Adopt a book produced elsewhere (the flood); later changes continue from its id."""
        if book.is_crossed() or not book.bids or not book.asks:
            raise ValueError("replacement book must be non-empty on both sides and uncrossed")
        self.book = book

    def step(self, time_ms: int) -> Interval:
        """Advance one interval: a few random changes aggregated into one diff."""
        first_id = self.book.update_id + 1
        bid_changes: dict[int, int] = {}
        ask_changes: dict[int, int] = {}
        trades: list[Trade] = []
        for _ in range(self._rng.randint(1, self._MAX_CHANGES)):
            is_bid = self._rng.random() < 0.5
            side, changes = (
                (self.book.bids, bid_changes) if is_bid else (self.book.asks, ask_changes)
            )
            kind = self._rng.random()
            if kind < self._P_TRADE:
                trade = self._trade(is_bid, side, changes, time_ms)
                if trade is not None:
                    trades.append(trade)
            elif kind < self._P_MODIFY or (kind >= self._P_ADD and len(side) < 2):
                price = self._rng.choice(list(side))
                self._set(side, changes, price, self._random_qty())
            elif kind < self._P_ADD:
                self._add(is_bid, side, changes)
            else:
                self._set(side, changes, self._rng.choice(list(side)), 0)
        self._rebalance(True, self.book.bids, bid_changes)
        self._rebalance(False, self.book.asks, ask_changes)
        diff = DepthDiff(
            first_id=first_id,
            last_id=self.book.update_id,
            bids=tuple(sorted(bid_changes.items(), reverse=True)),
            asks=tuple(sorted(ask_changes.items())),
        )
        return Interval(self.spec.symbol, time_ms, diff, tuple(trades))

    def _set(self, side: dict[int, int], changes: dict[int, int], price: int, qty: int) -> None:
        if qty:
            side[price] = qty
        else:
            del side[price]
        changes[price] = qty  # a level changed twice in one interval keeps its final qty
        self.book.update_id += 1

    def _add(self, is_bid: bool, side: dict[int, int], changes: dict[int, int]) -> None:
        best_bid, best_ask = self.book.best_bid(), self.book.best_ask()
        spread = best_ask - best_bid
        improve = spread > 1 and self._rng.random() < 0.35
        if is_bid:
            if improve:
                price = best_bid + self._rng.randint(1, min(spread - 1, 3))
            else:
                price = max(1, best_bid - self._rng.randint(1, 2 * self.levels))
        elif improve:
            price = best_ask - self._rng.randint(1, min(spread - 1, 3))
        else:
            price = best_ask + self._rng.randint(1, 2 * self.levels)
        self._set(side, changes, price, self._random_qty())

    def _trade(
        self, is_bid: bool, side: dict[int, int], changes: dict[int, int], time_ms: int
    ) -> Trade | None:
        # A trade against the bid side means the seller was the taker, so the buyer made.
        price = self.book.best_bid() if is_bid else self.book.best_ask()
        resting = side[price]
        if len(side) > 1 and (resting == 1 or self._rng.random() < 0.3):
            qty = resting  # sweeps the level, so the best price moves
        elif resting > 1:
            qty = self._rng.randint(1, resting - 1)
        else:
            return None  # the side's last unit; keep the book two-sided
        self._set(side, changes, price, resting - qty)
        trade = Trade(self._next_trade_id, price, qty, is_bid, time_ms)
        self._next_trade_id += 1
        return trade

    def _rebalance(self, is_bid: bool, side: dict[int, int], changes: dict[int, int]) -> None:
        """Bring the side back to exactly `levels` levels by touching its far end."""
        for _ in range(len(side) - self.levels):
            self._set(side, changes, min(side) if is_bid else max(side), 0)
        for _ in range(self.levels - len(side)):
            if is_bid:
                price = min(side) - self._rng.randint(1, 3)
                if price <= 0:
                    return  # a tiny mid leaves no room below; fewer levels is fine
            else:
                price = max(side) + self._rng.randint(1, 3)
            self._set(side, changes, price, self._random_qty())


class Market:
    """All symbols of one simulated venue, each with its own seeded random stream."""

    def __init__(self, specs: list[MarketSpec], levels: int, seed: int) -> None:
        self._symbols: dict[str, SymbolMarket] = {}
        for index, spec in enumerate(specs):
            # A string seed is hashed deterministically (not via hash()), so runs repeat.
            rng = random.Random(f"{seed}/{spec.symbol}")
            first_update_id = 1_000_000 * (index + 1) + rng.randrange(1000)
            first_trade_id = 100_000 * (index + 1)
            self._symbols[spec.symbol] = SymbolMarket(
                spec, levels, rng, first_update_id, first_trade_id
            )

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._symbols

    def get(self, symbol: str) -> SymbolMarket:
        return self._symbols[symbol]

    def step(self, time_ms: int) -> list[Interval]:
        return [market.step(time_ms) for market in self._symbols.values()]
