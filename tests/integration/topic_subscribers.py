"""An engine-side test actor that keeps every bbo / aggTrade / mark / top-of-book / kline /
ticker event it receives, and a LocalBook of the book topic fed as an engine feeds one: with the
book events only (module level so Thespian's child processes can import it)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from thespian.actors import Actor

from exconn.book.local import LocalBook
from exconn.messages import (
    AggTrade,
    Bbo,
    BookDelta,
    BookReset,
    BookSnapshot,
    BookStale,
    BookTop,
    EventBatch,
    Kline,
    MarkPrice,
    SubscriptionError,
    Ticker24h,
)

BOOK_EVENTS = (BookSnapshot, BookDelta, BookReset, BookStale)


class GetEvents(msgspec.Struct, frozen=True):
    pass


class Events(msgspec.Struct, frozen=True):
    bbos: list[Bbo]
    aggs: list[AggTrade]
    marks: list[MarkPrice]
    others: list[str]  # type names of anything else received
    errors: list[str]
    tops: list[BookTop] = msgspec.field(default_factory=list)
    klines: list[Kline] = msgspec.field(default_factory=list)
    tickers: list[Ticker24h] = msgspec.field(default_factory=list)
    # The book topic as a LocalBook holds it (one symbol per recorder in these tests).
    book_update_id: int | None = None
    book_bids: list[tuple[Decimal, Decimal]] = msgspec.field(default_factory=list)
    book_asks: list[tuple[Decimal, Decimal]] = msgspec.field(default_factory=list)
    book_rejected: int = 0  # book events the LocalBook refused: must stay 0


class EventRecorder(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.bbos: list[Bbo] = []
        self.aggs: list[AggTrade] = []
        self.marks: list[MarkPrice] = []
        self.tops: list[BookTop] = []
        self.klines: list[Kline] = []
        self.tickers: list[Ticker24h] = []
        self.others: list[str] = []
        self.errors: list[str] = []
        self.book = LocalBook()
        self.book_rejected = 0

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            for event in message.events:
                if isinstance(event, Bbo):
                    self.bbos.append(event)
                elif isinstance(event, AggTrade):
                    self.aggs.append(event)
                elif isinstance(event, MarkPrice):
                    self.marks.append(event)
                elif isinstance(event, BookTop):
                    self.tops.append(event)
                elif isinstance(event, Kline):
                    self.klines.append(event)
                elif isinstance(event, Ticker24h):
                    self.tickers.append(event)
                elif isinstance(event, BOOK_EVENTS):
                    self.book_rejected += not self.book.on_event(event)
                else:
                    self.others.append(type(event).__name__)
        elif isinstance(message, SubscriptionError):
            self.errors.append(f"{message.topic}: {message.reason}")
        elif isinstance(message, GetEvents):
            bids, asks = self.book.top(10_000)
            self.send(
                sender,
                Events(
                    list(self.bbos),
                    list(self.aggs),
                    list(self.marks),
                    list(self.others),
                    list(self.errors),
                    tops=list(self.tops),
                    klines=list(self.klines),
                    tickers=list(self.tickers),
                    book_update_id=self.book.update_id,
                    book_bids=bids,
                    book_asks=asks,
                    book_rejected=self.book_rejected,
                ),
            )
