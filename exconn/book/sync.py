"""The generic order-book synchronisation state machine.

Every venue follows the same outline: buffer diffs until a snapshot is loaded, discard diffs the
snapshot already contains, check the first diff bridges the snapshot, then check each diff
continues the previous one. Only those three tests differ between venues, so they are the
``SyncRules`` a venue supplies (``exconn.venues.<venue>.book_sync``); this module owns buffering,
applying and what happens on a gap. A gap never leaves a wrong book behind: the book is cleared
and the driver goes back to waiting for a snapshot, keeping the diff that broke the chain as the
first buffered one.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Protocol

from exconn.book.orderbook import OrderBook


class SyncResult(IntEnum):
    APPLIED = 1  # the diff changed the live book
    BUFFERED = 2  # no snapshot yet; kept for later
    DROPPED = 3  # already contained in the book
    GAP = 4  # continuity broken: the book was cleared; fetch a new snapshot
    SNAPSHOT_TOO_OLD = 5  # the snapshot predates the buffered diffs; fetch another
    SYNCED = 6  # snapshot loaded and the buffer replayed


class SyncRules(Protocol):
    """A venue's book-sync rules, over its own wire diff type."""

    def first_id(self, diff: Any) -> int: ...
    def last_id(self, diff: Any) -> int: ...
    def bids(self, diff: Any) -> Any: ...
    def asks(self, diff: Any) -> Any: ...
    def snapshot_too_old(self, snapshot_id: int, first_buffered: Any) -> bool: ...
    def is_stale(self, diff: Any, book_id: int, first: bool) -> bool: ...
    def continues(self, diff: Any, book_id: int, first: bool) -> bool: ...


class BookSync:
    """Drives one symbol's ``OrderBook`` from diffs and snapshots under ``rules``."""

    __slots__ = ("_buffer", "_first", "_live", "book", "gaps", "max_buffer", "rules")

    def __init__(self, rules: SyncRules, book: OrderBook, max_buffer: int = 50_000) -> None:
        self.rules = rules
        self.book = book
        self.max_buffer = max_buffer
        self.gaps = 0
        self._buffer: list[Any] = []
        self._live = False
        self._first = True

    @property
    def live(self) -> bool:
        return self._live

    def needs_snapshot(self) -> bool:
        """True when diffs are buffered and no snapshot is loaded: time to fetch one."""
        return not self._live and bool(self._buffer)

    def reset(self) -> None:
        """Forget everything (socket lost, stream closed)."""
        self._buffer.clear()
        self._live = False
        self._first = True
        self.book.clear()

    def on_diff(self, diff: Any) -> SyncResult:
        if self._live:  # the common case first
            return self._step(diff)
        buf = self._buffer
        buf.append(diff)
        if len(buf) > self.max_buffer:
            # The snapshot is late; the oldest diffs are then older than any snapshot to
            # come, and snapshot_too_old() will ask for a newer one if they mattered.
            del buf[0]
        return SyncResult.BUFFERED

    def on_snapshot(self, snapshot_id: int, bids: Any, asks: Any) -> SyncResult:
        """Load a snapshot and replay the buffer; returns SYNCED, SNAPSHOT_TOO_OLD or GAP."""
        buffered = self._buffer
        if buffered and self.rules.snapshot_too_old(snapshot_id, buffered[0]):
            return SyncResult.SNAPSHOT_TOO_OLD
        self.book.load(snapshot_id, bids, asks)
        self._live = True
        self._first = True
        self._buffer = []
        for i, diff in enumerate(buffered):
            if self._step(diff) is SyncResult.GAP:
                # _step kept `diff` as the first buffered one; keep the rest after it.
                self._buffer.extend(buffered[i + 1 :])
                return SyncResult.GAP
        return SyncResult.SYNCED

    @property
    def fresh(self) -> bool:
        """True while no diff has been applied since the snapshot (venues bridge differently)."""
        return self._first

    def adopt(
        self, book: OrderBook, fresh: bool = False
    ) -> tuple[SyncResult, list[tuple[int, Any]]]:
        """Take ``book`` (a live book another socket built) as this sync's snapshot and replay
        the buffered diffs onto it, returning the result and the ``(prev_id, diff)`` pairs
        applied: the subscriber holds ``book``, so it needs each of them as a delta.

        This is how a replacement socket continues a book without a REST snapshot and without
        a reset (make-before-break). The caller has checked that the buffer reaches back to
        ``book`` (no event missed in between); a GAP during the replay is handled as in
        ``on_snapshot``.
        """
        buffered = self._buffer
        self.book = book
        self._live = True
        # ``fresh``: the held book came from a snapshot no diff has continued yet.
        self._first = fresh
        self._buffer = []
        applied: list[tuple[int, Any]] = []
        for i, diff in enumerate(buffered):
            prev = book.update_id
            result = self._step(diff)
            if result is SyncResult.GAP:
                self._buffer.extend(buffered[i + 1 :])
                return SyncResult.GAP, applied
            if result is SyncResult.APPLIED:
                applied.append((prev, diff))
        return SyncResult.SYNCED, applied

    def first_buffered(self) -> Any | None:
        return self._buffer[0] if self._buffer else None

    def _step(self, diff: Any) -> SyncResult:
        rules = self.rules
        book = self.book
        book_id = book.update_id
        first = self._first
        if rules.is_stale(diff, book_id, first):
            return SyncResult.DROPPED
        if not rules.continues(diff, book_id, first):
            self.gaps += 1
            book.clear()
            self._live = False
            self._first = True
            self._buffer = [diff]
            return SyncResult.GAP
        book.apply(rules.bids(diff), rules.asks(diff))
        book.update_id = rules.last_id(diff)
        self._first = False
        return SyncResult.APPLIED
