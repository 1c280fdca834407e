"""Which venue streams a connection's routed topics need (pure), the same on every venue.

Subscriptions are reference-counted (DESIGN §4): the router counts a topic's subscribers, and
here a venue stream counts the topics using it, so the first topic opens the stream and the
last one closes it. On Binance every topic has a stream of its own; on Bybit ``ticker`` and
``mark`` share ``tickers.<symbol>``, which stays subscribed while either has subscribers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exconn.model.symbols import SymbolMap
from exconn.topics import Topic, parse_topic


@dataclass
class RouteChange:
    """What the connection must do after a route update."""

    subscribe: list[str] = field(default_factory=list)
    unsubscribe: list[str] = field(default_factory=list)


class StreamRefs:
    """The open venue streams and the exconn topics each one serves."""

    __slots__ = ("_users", "streams")

    def __init__(self) -> None:
        self.streams: set[str] = set()  # open: subscribed, or to be on the next socket
        self._users: dict[str, set[str]] = {}  # stream -> topics routed to it

    def add(self, stream: str, topic: str) -> bool:
        """``topic`` has subscribers; True when that opens ``stream`` (subscribe it)."""
        self._users.setdefault(stream, set()).add(topic)
        if stream in self.streams:
            return False
        self.streams.add(stream)
        return True

    def remove(self, stream: str, topic: str) -> bool:
        """``topic`` has none left; True when that closes ``stream`` (unsubscribe it)."""
        users = self._users.get(stream)
        if users is not None:
            users.discard(topic)
            if users:
                return False
            del self._users[stream]
        if stream not in self.streams:
            return False
        self.streams.discard(stream)
        return True


def resolve_topic(
    topic: str, exchange: str, market: str, symbols: SymbolMap | None
) -> tuple[Topic, str]:
    """The parsed ``topic`` and its venue symbol. Raises ValueError for another venue's or
    market's topic, or before instruments are loaded; exconn.errors.UnknownSymbol for a
    symbol the venue does not list."""
    t = parse_topic(topic)
    if t.exchange != exchange or t.market != market:
        raise ValueError(f"{topic}: not a {exchange} {market} topic")
    if symbols is None:
        raise ValueError(f"{topic}: no instruments loaded")
    return t, symbols.to_venue(t.symbol)
