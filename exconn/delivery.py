"""Flow control with conflation for subscribers slower than the feed (pure: no Thespian).

A connection actor sends each subscriber one batch per drain. A subscriber whose handler is
slower than the feed makes Thespian queue batches for it: past ``MAX_QUEUED_TRANSMITS`` the
sender blocks (every other subscriber and the socket read wait too), past the drop level
batches are lost. ``Delivery`` keeps at most ``max_in_flight`` batches outstanding per
subscriber. What the feed produces for a subscriber at its limit waits here and goes out as
one batch when one of its transmits completes; once more than ``unmerged_drains`` drains
wait, it is conflated:

- consecutive ``BookDelta``s of a symbol merge exactly (absolute quantities: the last one per
  price wins, a zero stays a zero so the level is still removed; ``prev_update_id`` of the
  first, ``update_id`` and time of the last), so applying the merged delta gives the book
  that applying each would. A ``BookSnapshot``, ``BookReset`` or ``BookStale`` of the symbol
  (or a delta that does not continue the previous one) starts a new merge window;
- ``Bbo``, ``MarkPrice``, ``Ticker24h`` and ``BookTop`` (partial depth) are states: the latest
  per topic replaces the earlier one, as does the latest ``Kline`` per topic and bar;
- trades, aggregated trades and everything else are never merged or dropped.

A merged event takes the place of the first one it replaces: the slow subscriber sees the
newest state as early as its stream allows, and every event keeps its order otherwise.
Subscribers below their limit take the fast path: one dict lookup per batch, no per-event work.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exconn.messages import (
    Bbo,
    BookDelta,
    BookDeltaText,
    BookReset,
    BookSnapshot,
    BookStale,
    BookTop,
    Encodable,
    Kline,
    MarkPrice,
    Ticker24h,
)

# Batches a subscriber may have outstanding (not yet read by its process) before its events
# wait here: one on the wire to it, one queued behind. More only adds latency for a slow one.
DEFAULT_MAX_IN_FLIGHT = 2
# Drains that may wait unmerged before conflation starts (see Delivery): a subscriber at its
# limit is conflated only when one more drain comes before any of its transmits completes.
DEFAULT_UNMERGED_DRAINS = 2

AnyDelta = BookDeltaText | BookDelta

# Price (as received) -> its canonical string, shared by all merges: the same few hundred prices
# recur in every delta, and a cached str key hashes once where a Decimal key hashes every time.
# Cleared when it grows past this many prices (the market moved on).
PRICE_CACHE_MAX = 100_000


def _canonical(price: Any, cache: dict[Any, str]) -> str:
    """The price's value as a plain decimal string: "60000.10" and "60000.1" are one level."""
    key = format(Decimal(price).normalize(), "f")
    if len(cache) >= PRICE_CACHE_MAX:
        cache.clear()
    cache[price] = key
    return key


class _MergedDelta:
    """Consecutive deltas of one symbol folded into one; built only once a second one comes.

    Levels stay as received (strings or Decimals, the last one per price) and come out in the
    order their prices were first touched: the order does not change the book they build.
    """

    __slots__ = ("asks", "bids", "first", "last")

    def __init__(self, first: AnyDelta, cache: dict[Any, str]) -> None:
        self.first = first
        self.last = first
        self.bids: dict[str, tuple[Any, Any]] = {}
        self.asks: dict[str, tuple[Any, Any]] = {}
        self.add(first, cache)

    def add(self, delta: AnyDelta, cache: dict[Any, str]) -> None:
        self.last = delta
        for side, levels in ((self.bids, delta.bids), (self.asks, delta.asks)):
            for level in levels:
                price = level[0]
                key = cache.get(price)
                if key is None:
                    key = _canonical(price, cache)
                side[key] = level

    def event(self) -> AnyDelta:
        first, last = self.first, self.last
        bids, asks = self.bids.values(), self.asks.values()
        if type(last) is BookDeltaText:
            return BookDeltaText(
                exchange=first.exchange,
                market=first.market,
                symbol=first.symbol,
                prev_update_id=first.prev_update_id,
                update_id=last.update_id,
                bids=[(str(p), str(q)) for p, q in bids],
                asks=[(str(p), str(q)) for p, q in asks],
                ts=last.ts,
            )
        return BookDelta(
            exchange=first.exchange,
            market=first.market,
            symbol=first.symbol,
            prev_update_id=first.prev_update_id,
            update_id=last.update_id,
            bids=tuple((Decimal(p), Decimal(q)) for p, q in bids),
            asks=tuple((Decimal(p), Decimal(q)) for p, q in asks),
            ts=last.ts,
        )


Pending = Encodable | _MergedDelta


class _Subscriber:
    __slots__ = ("conflated", "held", "in_flight", "pending", "pending_ns", "windows")

    def __init__(self) -> None:
        self.in_flight = 0
        self.held: list[list[Encodable]] = []  # drains waiting as they came (see Delivery)
        self.pending: list[Pending] = []  # what waits, conflated, once too much waited
        self.pending_ns = 0  # drain stamp of the oldest waiting event
        # merge key -> index in ``pending`` of the event the next one of that key replaces
        self.windows: dict[tuple[Any, ...], int] = {}
        self.conflated = 0


class Delivery:
    """Per-subscriber in-flight accounting and conflation; subscribers keyed by str(address).

    The caller sends what ``offer`` and ``completed`` return, as one batch, and reports the
    end of every such transmit (success or failure) with ``completed``.

    The first ``unmerged_drains`` drains that wait for a subscriber wait as they came and go
    out together, unchanged: a sender may learn of acknowledgements late (a poll of the
    transport completes at most one transmit per subscriber, exconn.actors.tracked_send), and a
    subscriber that keeps up catches up on such a delay through one larger batch. Only a
    subscriber still behind when one more drain comes is conflated, from the oldest waiting
    event on.
    """

    __slots__ = ("_prices", "_subs", "max_in_flight", "unmerged_drains")

    def __init__(
        self,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        unmerged_drains: int = DEFAULT_UNMERGED_DRAINS,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self.unmerged_drains = unmerged_drains
        self._subs: dict[str, _Subscriber] = {}
        self._prices: dict[Any, str] = {}

    def offer(self, key: str, events: list[Encodable], received_ns: int = 0) -> bool:
        """One drain's events for ``key``. True: send them now (counted in flight).
        False: they wait (the list is kept: the caller must not reuse it)."""
        sub = self._subs.get(key)
        if sub is None:
            sub = self._subs[key] = _Subscriber()
        if sub.in_flight < self.max_in_flight and not sub.held and not sub.pending:
            sub.in_flight += 1
            return True
        if not sub.held and not sub.pending:
            sub.pending_ns = received_ns
        if not sub.pending:
            if len(sub.held) < self.unmerged_drains:
                sub.held.append(events)
                return False
            for drain in sub.held:
                _hold(sub, drain, self._prices)
            sub.held = []
        _hold(sub, events, self._prices)
        return False

    def completed(self, key: str) -> tuple[list[Encodable], int] | None:
        """A transmit to ``key`` ended. Returns (events, received_ns) to send now as one batch
        (counted in flight), or None."""
        sub = self._subs.get(key)
        if sub is None:
            return None
        if sub.in_flight > 0:
            sub.in_flight -= 1
        if sub.in_flight >= self.max_in_flight:
            return None
        if sub.held:
            held, sub.held = sub.held, []
            events = held[0] if len(held) == 1 else [e for drain in held for e in drain]
        elif sub.pending:
            events = [p.event() if type(p) is _MergedDelta else p for p in sub.pending]
            sub.pending, sub.windows = [], {}
        else:
            return None
        sub.in_flight += 1
        return events, sub.pending_ns

    def at_limit(self, key: str) -> bool:
        """True if a batch for ``key`` would wait now."""
        sub = self._subs.get(key)
        return sub is not None and (
            sub.in_flight >= self.max_in_flight or bool(sub.held) or bool(sub.pending)
        )

    def in_flight(self, key: str) -> int:
        sub = self._subs.get(key)
        return sub.in_flight if sub is not None else 0

    def conflated_for(self, key: str) -> int:
        sub = self._subs.get(key)
        return sub.conflated if sub is not None else 0

    def waiting(self, key: str) -> int:
        """Events waiting for ``key`` (a merged one counted once)."""
        sub = self._subs.get(key)
        if sub is None:
            return 0
        return sum(len(d) for d in sub.held) + len(sub.pending)

    @property
    def conflated(self) -> int:
        """Events merged away or replaced, all subscribers together."""
        return sum(s.conflated for s in self._subs.values())

    def conflated_by_subscriber(self) -> tuple[tuple[str, int], ...]:
        return tuple((k, s.conflated) for k, s in self._subs.items() if s.conflated)


def _hold(sub: _Subscriber, events: list[Encodable], prices: dict[Any, str]) -> None:
    """Append ``events`` to the subscriber's pending list, conflating what may be."""
    pending, windows = sub.pending, sub.windows
    for event in events:
        if isinstance(event, BookDeltaText | BookDelta):
            if _merge_delta(sub, event, prices):
                sub.conflated += 1
            continue
        if isinstance(event, BookSnapshot | BookReset | BookStale):
            windows.pop(_book_key(event), None)
            pending.append(event)
            continue
        key: tuple[Any, ...]
        if isinstance(event, Bbo | MarkPrice | Ticker24h):
            key = (type(event), event.exchange, event.market, event.symbol)
        elif isinstance(event, BookTop):
            key = (BookTop, event.exchange, event.market, event.symbol, event.depth)
        elif isinstance(event, Kline):
            key = (
                Kline,
                event.exchange,
                event.market,
                event.symbol,
                event.interval,
                event.open_time,
            )
        else:  # trades and anything not known to be a state: never conflated
            pending.append(event)
            continue
        at = windows.get(key)
        if at is None:
            windows[key] = len(pending)
            pending.append(event)
        else:
            pending[at] = event
            sub.conflated += 1


def _merge_delta(sub: _Subscriber, delta: AnyDelta, prices: dict[Any, str]) -> bool:
    """Fold ``delta`` into the symbol's open merge window; False: it opened a new one."""
    pending, windows = sub.pending, sub.windows
    key = _book_key(delta)
    at = windows.get(key)
    if at is not None:
        slot = pending[at]
        merged = slot if isinstance(slot, _MergedDelta) else None
        last = merged.last if merged is not None else slot
        # Only a delta continuing the previous one merges: a broken chain must reach the
        # subscriber as it is, so that its book notices the gap.
        if isinstance(last, BookDeltaText | BookDelta) and delta.prev_update_id == last.update_id:
            if merged is None:
                merged = _MergedDelta(last, prices)
                pending[at] = merged
            merged.add(delta, prices)
            return True
    windows[key] = len(pending)
    pending.append(delta)
    return False


def _book_key(event: AnyDelta | BookSnapshot | BookReset | BookStale) -> tuple[str, ...]:
    return ("book", event.exchange, event.market, event.symbol)
