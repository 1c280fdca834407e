"""Bybit flood mode: a long run of `orderbook.{depth}.{symbol}` deltas, pre-encoded.

The book changes come from the same generator as Binance spot's flood
(`flood.iter_flood`: small diffs near the top, one engine update id each); what is Bybit's
own is the projection onto a depth-limited view (bybit.md §7). Each diff becomes one delta
message listing the view's levels that changed, appeared, or left it at the boundary (size
"0"), with `u` one above the previous message's, exactly as `bybit_book.DepthView` would
publish it; the projection is incremental so 200 000 updates encode in seconds, not minutes.
Changes are drawn close enough to the top that every diff is visible in the view (a diff
that changes nothing visible would be sent as no message, as Bybit would).
"""

import random
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

from exconn.sim.bybit_book import Levels, top
from exconn.sim.bybit_wire import Wire
from exconn.sim.flood import iter_flood
from exconn.sim.market import Book
from exconn.sim.wsframes import ChunkBuilder, text_frame

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class BybitFloodPlan:
    category: str
    symbol: str
    topic: str  # "orderbook.{depth}.{symbol}"
    depth: int
    start_u: int
    n_messages: int  # deltas in the chunks; `u` runs start_u + 1 .. final_u
    chunks: list[bytes]  # complete unmasked server text frames, concatenated
    final_book: Book  # the whole book afterwards (update_id = the engine's id)
    final_bids: dict[int, int]  # the depth view afterwards
    final_asks: dict[int, int]

    @property
    def final_u(self) -> int:
        return self.start_u + self.n_messages


class SideView:
    """One side of a book and its top `depth` levels, kept incrementally.

    `keys` holds every price of the side in best-first order (bids negated), so the view is
    `keys[:depth]`; `visible` maps the view's prices to their quantities.
    """

    __slots__ = ("depth", "keys", "qty", "sign", "visible")

    def __init__(self, side: dict[int, int], depth: int, is_bid: bool) -> None:
        self.depth = depth
        self.sign = -1 if is_bid else 1
        self.qty = dict(side)
        self.keys = sorted(self.sign * p for p in side)
        self.visible = {self.sign * k: side[self.sign * k] for k in self.keys[:depth]}

    def apply(self, price: int, qty: int, before: dict[int, int]) -> None:
        """Set `price` to `qty` (0 removes); `before` collects the visible quantity (0 if
        hidden) of every price whose visibility or quantity this may change, first seen."""
        keys, depth, visible, sign = self.keys, self.depth, self.visible, self.sign
        k = sign * price
        i = bisect_left(keys, k)
        present = i < len(keys) and keys[i] == k
        if qty == 0:
            if not present:
                return
            del keys[i]
            del self.qty[price]
            if i < depth:
                before.setdefault(price, visible.pop(price))
                if len(keys) >= depth:  # the first hidden level moves into the view
                    entering = sign * keys[depth - 1]
                    before.setdefault(entering, 0)
                    visible[entering] = self.qty[entering]
            return
        self.qty[price] = qty
        if present:
            if i < depth:
                before.setdefault(price, visible[price])
                visible[price] = qty
            return
        keys.insert(i, k)
        if i < depth:
            before.setdefault(price, 0)
            visible[price] = qty
            if len(keys) > depth:  # the last visible level is pushed out
                leaving = sign * keys[depth]
                before.setdefault(leaving, visible.pop(leaving))

    def changes(self, before: dict[int, int]) -> Levels:
        """The view's changes since `before` was started, best first (0 = left the view)."""
        visible = self.visible
        out = [(p, q) for p, old in before.items() if (q := visible.get(p, 0)) != old]
        out.sort(reverse=self.sign < 0)
        return out


def iter_view_deltas(
    book: Book,
    depth: int,
    n_updates: int,
    levels_per_update: int,
    min_qty_steps: int,
    max_qty_steps: int,
    rng: random.Random,
) -> Iterator[tuple[int, Levels, Levels]]:
    """(engine update id, bid changes, ask changes) of the top-`depth` view per book diff.

    `book` is mutated into the final state. Diffs that change nothing in the view yield
    nothing. Every change is drawn within `depth - levels_per_update` ticks of the best
    price, so its level ranks inside the view even after the diff's other insertions.
    """
    if depth < 1:
        raise ValueError("depth must be >= 1")
    bids, asks = SideView(book.bids, depth, True), SideView(book.asks, depth, False)
    # iter_flood draws offsets in [-1, 2 * levels): keep them below depth - levels_per_update.
    span_levels = max(1, (depth - levels_per_update) // 2)
    diffs = iter_flood(
        book, n_updates, levels_per_update, span_levels, min_qty_steps, max_qty_steps, rng
    )
    for diff in diffs:
        before_b: dict[int, int] = {}
        before_a: dict[int, int] = {}
        for price, qty in diff.bids:
            bids.apply(price, qty, before_b)
        for price, qty in diff.asks:
            asks.apply(price, qty, before_a)
        db, da = bids.changes(before_b), asks.changes(before_a)
        if db or da:
            yield diff.last_id, db, da


def delta_message(
    wire: Wire, topic: str, u: int, seq: int, bids: Levels, asks: Levels, time_ms: int
) -> bytes:
    """One delta exactly as `BybitCore` publishes it."""
    return _encode(
        {
            "topic": topic,
            "type": "delta",
            "ts": time_ms,
            "data": {
                "s": wire.symbol,
                "b": wire.levels(bids),
                "a": wire.levels(asks),
                "u": u,
                "seq": seq,
            },
            "cts": time_ms,
        }
    )


def build_bybit_flood(
    wire: Wire,
    book: Book,
    depth: int,
    start_u: int,
    n_updates: int,
    levels_per_update: int,
    seed: int,
    time_ms: int,
) -> BybitFloodPlan:
    """Encode the flood for `orderbook.{depth}.{symbol}`; `book` (whose top `depth` levels
    are the view subscribers were sent with `start_u`) is consumed into the final book."""
    if n_updates < 1 or levels_per_update < 1:
        raise ValueError("n_updates and levels_per_update must be >= 1")
    sym = wire.sym
    topic = f"orderbook.{depth}.{sym.symbol}"
    rng = random.Random(f"{seed}/{wire.category}/{sym.symbol}/bybit-flood/{book.update_id}")
    builder = ChunkBuilder()
    u = start_u
    deltas = iter_view_deltas(
        book, depth, n_updates, levels_per_update, sym.min_qty_steps, sym.max_level_steps, rng
    )
    for seq, db, da in deltas:
        u += 1
        builder.add(text_frame(delta_message(wire, topic, u, seq, db, da, time_ms)))
    return BybitFloodPlan(
        category=wire.category,
        symbol=sym.symbol,
        topic=topic,
        depth=depth,
        start_u=start_u,
        n_messages=u - start_u,
        chunks=builder.finish(),
        final_book=book,
        final_bids=top(book.bids, depth, True),
        final_asks=top(book.asks, depth, False),
    )
