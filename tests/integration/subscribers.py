"""Engine-side test actors (module level so Thespian's child processes can import them)."""

from __future__ import annotations

from typing import Any

import msgspec
from thespian.actors import Actor

from exconn.book.local import LocalBook
from exconn.messages import (
    BookDelta,
    BookReset,
    BookSnapshot,
    EventBatch,
    Subscribe,
    SubscriptionError,
    Trade,
)


class GetView(msgspec.Struct, frozen=True):
    symbol: str


class View(msgspec.Struct, frozen=True):
    symbol: str
    valid: bool
    update_id: int | None
    bids: list[tuple[Any, Any]]
    asks: list[tuple[Any, Any]]
    snapshots: int
    deltas: int
    resets: int
    rejected_deltas: int  # deltas that did not continue the held book: must stay 0
    trades: int
    trade_ids: list[str]
    errors: list[str]


class Attach(msgspec.Struct, frozen=True):
    """Tell an engine actor where exconn's root is and what to subscribe to."""

    root: Any
    topics: tuple[str, ...]


class RecordingSubscriber(Actor):
    """Keeps a LocalBook per symbol and counts everything it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.books: dict[str, LocalBook] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.trade_ids: dict[str, list[str]] = {}
        self.errors: list[str] = []

    def _count(self, symbol: str, key: str) -> None:
        c = self.counts.setdefault(
            symbol, {"snapshots": 0, "deltas": 0, "resets": 0, "rejected": 0, "trades": 0}
        )
        c[key] += 1

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            for event in message.events:
                if isinstance(event, Trade):
                    self._count(event.symbol, "trades")
                    self.trade_ids.setdefault(event.symbol, []).append(event.trade_id)
                    continue
                book = self.books.setdefault(event.symbol, LocalBook())
                ok = book.on_event(event)
                if isinstance(event, BookSnapshot):
                    self._count(event.symbol, "snapshots")
                elif isinstance(event, BookDelta):
                    self._count(event.symbol, "deltas")
                    if not ok:
                        self._count(event.symbol, "rejected")
                elif isinstance(event, BookReset):
                    self._count(event.symbol, "resets")
        elif isinstance(message, Attach):
            # What an engine's own actor does: no handle, just messages to exconn's root.
            self.send(message.root, Subscribe(subscriber=self.myAddress, topics=message.topics))
        elif isinstance(message, SubscriptionError):
            self.errors.append(f"{message.topic}: {message.reason}")
        elif isinstance(message, GetView):
            book = self.books.get(message.symbol, LocalBook())
            c = self.counts.get(message.symbol, {})
            bids, asks = book.top(10_000)
            self.send(
                sender,
                View(
                    symbol=message.symbol,
                    valid=book.valid,
                    update_id=book.update_id,
                    bids=bids,
                    asks=asks,
                    snapshots=c.get("snapshots", 0),
                    deltas=c.get("deltas", 0),
                    resets=c.get("resets", 0),
                    rejected_deltas=c.get("rejected", 0),
                    trades=c.get("trades", 0),
                    trade_ids=list(self.trade_ids.get(message.symbol, [])),
                    errors=list(self.errors),
                ),
            )
