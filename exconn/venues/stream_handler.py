"""What every venue's market-data ``StreamHandler`` keeps and answers alike (pure).

The connection actor drives a venue's handler through one surface: ``set_route``,
``on_frames``, ``begin_candidate`` / ``ready_to_promote`` / ``promote`` / ``drop_candidate``,
``on_disconnect``, ``held_symbols`` / ``expire_held``, snapshots, backfills, ``control_frames``,
and the counters ``streams``, ``malformed``, ``resyncs``, ``shutdown_notices``. This base holds
the venue-neutral part of it: instruments and per-symbol feeds, the reference-counted streams,
the counters and the expiry of held books. What reads the venue's wire or follows its sync
rules is in ``venues/<venue>/streams.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Generic, TypeVar

from loguru import logger

from exconn.model.enums import Market
from exconn.model.instruments import Instrument
from exconn.model.symbols import SymbolMap
from exconn.outbox import Outbox
from exconn.venues.book_feed import BookFeed
from exconn.venues.malformed import MalformedFrames
from exconn.venues.subscriptions import StreamRefs

Feed = TypeVar("Feed", bound=BookFeed)


class BaseStreamHandler(Generic[Feed]):
    """State every venue's stream handler keeps, by venue symbol."""

    exchange: ClassVar[str]  # as topics and events name the venue

    def __init__(self, market: Market, instruments: Iterable[Instrument]) -> None:
        self.market = Market(market)
        self.market_name = self.market.value
        instruments = list(instruments)
        self.symbols = SymbolMap.from_instruments(instruments) if instruments else None
        self._instruments = {i.venue_symbol: i for i in instruments}
        self.feeds: dict[str, Feed] = {}  # venue symbol -> feed, created on its first route
        self._refs = StreamRefs()
        self.resyncs = 0  # books subscribers had to drop
        self.shutdown_notices = 0  # the connection reads and clears it
        self._log = logger.bind(exchange=self.exchange, market=self.market_name)
        self._malformed = MalformedFrames(self._log)

    @property
    def streams(self) -> set[str]:
        """The venue streams routed topics need (the connection subscribes them)."""
        return self._refs.streams

    @property
    def malformed(self) -> int:
        return self._malformed.count

    def held_symbols(self) -> list[str]:
        """Venue symbols whose subscribers hold a book no socket has continued yet."""
        return [s for s, f in self.feeds.items() if f.held is not None]

    def expire_held(self, reason: str, out: Outbox) -> None:
        """Books held too long: subscribers must drop them (a snapshot follows on resync)."""
        for feed in self.feeds.values():
            if feed.expire_held(reason, out):
                self.resyncs += 1
