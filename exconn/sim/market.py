"""Deterministic, seeded market: agents trading real orders in the matching engine.

Prices are integer ticks and quantities integer steps of the symbol's grid, so the book is
exact and every wire string is derived from it without rounding. Each symbol's book is an
`OrderBook` (exconn.sim.matching); a market-maker agent places, amends and cancels orders
and a taker agent sends IOC orders, so the public book and trades come from the same
engine state as any user's fills. Each change to a level consumes one update id; one
`Interval` aggregates every change since the previous one (agents' and users' alike).
No I/O and no clock: callers pass the time.
"""

import random
from dataclasses import dataclass, field

from exconn.sim.matching import (
    Batch,
    LevelChange,
    OrderBook,
    OrderRequest,
    Side,
    StpMode,
    TimeInForce,
    TradeEvent,
)

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


MAKER_ACCOUNT = "sim-maker"  # the agents' accounts; the ledger does not know them
TAKER_ACCOUNT = "sim-taker"


class SymbolMarket:
    """One symbol's order book plus the seeded agents that move it."""

    # Probabilities of each agent action, cumulative; the rest are level withdrawals.
    _P_TRADE = 0.12
    _P_MODIFY = 0.60
    _P_ADD = 0.80
    _MAX_CHANGES = 4

    def __init__(
        self,
        spec: MarketSpec,
        levels: int,
        rng: random.Random,
        first_update_id: int,
        first_trade_id: int,
    ) -> None:
        if levels < 1:
            raise ValueError("levels must be >= 1")
        self.spec = spec
        self.levels = levels
        self._rng = rng
        self.engine = OrderBook(spec.symbol, first_update_id, first_trade_id=first_trade_id)
        self._time_ms = 0
        self._published = first_update_id
        self._bid_changes: dict[int, int] = {}
        self._ask_changes: dict[int, int] = {}
        self._trades: list[Trade] = []
        initial = self._initial_book(first_update_id)
        self.engine.reset(
            initial.bids.items(), initial.asks.items(), first_update_id, MAKER_ACCOUNT, 0
        )
        # A mirror kept by applying the engine's own level changes, so what is served is
        # exactly what the diffs describe.
        self.book = initial
        self.engine.subscribe(self._on_batch)

    @property
    def next_trade_id(self) -> int:
        return self.engine.next_trade_id

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
        """Adopt a book produced elsewhere (the flood); later changes continue from its id.

        Every resting order, a user's included, is replaced by one maker order per level
        (users' orders are reported CANCELED); unpublished level changes are dropped since
        the new book supersedes them.
        """
        if book.is_crossed() or not book.bids or not book.asks:
            raise ValueError("replacement book must be non-empty on both sides and uncrossed")
        self.engine.reset(
            book.bids.items(), book.asks.items(), book.update_id, MAKER_ACCOUNT, self._time_ms
        )
        self.book = book
        self._published = book.update_id
        self._bid_changes.clear()
        self._ask_changes.clear()

    def _on_batch(self, batch: Batch) -> None:
        for event in batch.events:
            if isinstance(event, LevelChange):
                is_bid = event.side is Side.BUY
                side = self.book.bids if is_bid else self.book.asks
                if event.qty:
                    side[event.price] = event.qty
                else:
                    side.pop(event.price, None)
                self.book.update_id = event.update_id
                # A level changed twice before the next interval keeps its final qty.
                (self._bid_changes if is_bid else self._ask_changes)[event.price] = event.qty
            elif isinstance(event, TradeEvent):
                self._trades.append(
                    Trade(
                        event.trade_id, event.price, event.qty, event.buyer_is_maker, event.time_ms
                    )
                )

    def step(self, time_ms: int) -> Interval:
        """Advance one interval: a few agent actions, then one aggregated diff.

        The diff also carries changes made by anyone else since the previous interval.
        """
        self._time_ms = time_ms
        for _ in range(self._rng.randint(1, self._MAX_CHANGES)):
            side = Side.BUY if self._rng.random() < 0.5 else Side.SELL
            levels = self.engine.totals[side]
            kind = self._rng.random()
            if kind < self._P_TRADE:
                self._take(side)
            elif kind < self._P_MODIFY or (kind >= self._P_ADD and len(levels) < 2):
                self._modify(side)
            elif kind < self._P_ADD:
                self._add(side)
            else:
                self._withdraw(side, self._rng.choice(list(levels)))
        self._rebalance(Side.BUY)
        self._rebalance(Side.SELL)
        return self._drain(time_ms)

    def _drain(self, time_ms: int) -> Interval:
        diff = DepthDiff(
            first_id=self._published + 1,
            last_id=self.engine.update_id,
            bids=tuple(sorted(self._bid_changes.items(), reverse=True)),
            asks=tuple(sorted(self._ask_changes.items())),
        )
        trades = tuple(self._trades)
        self._published = self.engine.update_id
        self._bid_changes, self._ask_changes, self._trades = {}, {}, []
        return Interval(self.spec.symbol, time_ms, diff, trades)

    def _place(self, side: Side, price: int, qty: int, tif: TimeInForce) -> None:
        account = TAKER_ACCOUNT if tif is TimeInForce.IOC else MAKER_ACCOUNT
        request = OrderRequest(account, side, qty, price, tif=tif, stp=StpMode.NONE)
        self.engine.submit(request, self._time_ms)

    def _maker_orders(self, side: Side, price: int) -> list[tuple[int, int, int]]:
        """(order id, qty, filled) of the maker's orders at one level."""
        return [
            (o.order_id, o.qty, o.filled)
            for o in self.engine.orders_at(side, price)
            if o.account == MAKER_ACCOUNT
        ]

    def _modify(self, side: Side) -> None:
        levels = self.engine.totals[side]
        if not levels:
            return
        price = self._rng.choice(list(levels))
        mine = self._maker_orders(side, price)
        new_leaves = self._random_qty()
        if not mine:
            self._place(side, price, new_leaves, TimeInForce.GTC)
            return
        order_id, qty, filled = self._rng.choice(mine)
        if filled + new_leaves != qty:
            self.engine.amend(order_id, self._time_ms, qty=filled + new_leaves)

    def _withdraw(self, side: Side, price: int) -> bool:
        """Cancel the maker's orders at one level; False if others' orders keep it alive."""
        mine = self._maker_orders(side, price)
        for order_id, _, _ in mine:
            self.engine.cancel(order_id, self._time_ms)
        return price not in self.engine.totals[side]

    def _add(self, side: Side) -> None:
        best_bid, best_ask = self.engine.best_bid(), self.engine.best_ask()
        if best_bid is None or best_ask is None:
            return  # the rebalance refills an empty side
        spread = best_ask - best_bid
        improve = spread > 1 and self._rng.random() < 0.35
        if side is Side.BUY:
            if improve:
                price = best_bid + self._rng.randint(1, min(spread - 1, 3))
            else:
                price = max(1, best_bid - self._rng.randint(1, 2 * self.levels))
        elif improve:
            price = best_ask - self._rng.randint(1, min(spread - 1, 3))
        else:
            price = best_ask + self._rng.randint(1, 2 * self.levels)
        self._place(side, price, self._random_qty(), TimeInForce.POST_ONLY)

    def _take(self, side: Side) -> None:
        """The taker agent hits `side`'s best level (a trade on the bids: the seller took)."""
        price = self.engine.best(side)
        if price is None:
            return
        levels = self.engine.totals[side]
        resting = levels[price]
        if len(levels) > 1 and (resting == 1 or self._rng.random() < 0.3):
            qty = resting  # sweeps the level, so the best price moves
        elif resting > 1:
            qty = self._rng.randint(1, resting - 1)
        else:
            return  # the side's last unit; keep the book two-sided
        self._place(side.opposite, price, qty, TimeInForce.IOC)

    def _rebalance(self, side: Side) -> None:
        """Bring the side back to `levels` levels by touching its far end."""
        levels = self.engine.totals[side]
        excess = len(levels) - self.levels
        if excess > 0:
            for price in reversed(self.engine.prices(side)):  # worst first
                if excess <= 0:
                    break
                if self._withdraw(side, price):
                    excess -= 1
        is_bid = side is Side.BUY
        for _ in range(self.levels - len(levels)):
            if levels:
                far = min(levels) if is_bid else max(levels)
            else:
                # An empty side restarts just outside the other side (or around the mid).
                other = self.engine.best(side.opposite)
                if other is None:
                    far = self.spec.mid_ticks + 1 if is_bid else self.spec.mid_ticks
                else:
                    far = other
            price = far - self._rng.randint(1, 3) if is_bid else far + self._rng.randint(1, 3)
            if price <= 0:
                return  # a tiny mid leaves no room below; fewer levels is fine
            self._place(side, price, self._random_qty(), TimeInForce.POST_ONLY)


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

    def engines(self) -> dict[str, OrderBook]:
        """Each symbol's matching engine, for a ledger or venue layer to trade in."""
        return {symbol: market.engine for symbol, market in self._symbols.items()}

    def step(self, time_ms: int) -> list[Interval]:
        return [market.step(time_ms) for market in self._symbols.values()]
