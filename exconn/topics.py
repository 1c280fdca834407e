"""Topic names, wildcard matching and the reference-counted subscription registry (pure).

A market-data topic is ``kind.exchange.market.symbol`` (``book.binance.spot.BTC/USDT``); any
segment of a subscription may be ``*``. Symbols contain ``/`` and ``:`` but never ``.``, so the
dot is a safe separator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# book: order book; trades: raw trades; bbo: best bid/offer; aggtrades: aggregated trades;
# mark: mark price and funding (perpetuals only).
MARKET_KINDS = frozenset({"book", "trades", "bbo", "aggtrades", "mark"})
WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class Topic:
    kind: str
    exchange: str
    market: str
    symbol: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.exchange}.{self.market}.{self.symbol}"


def make_topic(kind: str, exchange: str, market: str, symbol: str) -> str:
    return f"{kind}.{exchange}.{market}.{symbol}"


def parse_topic(topic: str) -> Topic:
    """Split a market-data topic; raises ValueError naming the expected form."""
    parts = topic.split(".")
    if len(parts) != 4 or not all(parts):
        raise ValueError(
            f"topic {topic!r} is not kind.exchange.market.symbol (e.g. book.binance.spot.BTC/USDT)"
        )
    return Topic(*parts)


def is_concrete(topic: str) -> bool:
    return WILDCARD not in topic.split(".")


def matches(pattern: str, topic: str) -> bool:
    """True when ``topic`` (concrete) is covered by ``pattern`` (segments may be ``*``)."""
    p_parts = pattern.split(".")
    t_parts = topic.split(".")
    if len(p_parts) != len(t_parts):
        return False
    return all(p in (WILDCARD, t) for p, t in zip(p_parts, t_parts, strict=True))


def validate_subscription(topic: str) -> None:
    t = parse_topic(topic)
    if t.kind != WILDCARD and t.kind not in MARKET_KINDS:
        raise ValueError(f"topic {topic!r}: unknown kind {t.kind!r}; known: {sorted(MARKET_KINDS)}")


@dataclass
class SubscriptionRegistry:
    """Who wants which topic. Subscribers are opaque (Thespian addresses are unhashable), so
    they are keyed by ``str(subscriber)``.

    ``subscribe``/``unsubscribe`` return the concrete topics whose subscriber list changed; the
    caller pushes the new lists (``subscribers_of``) to whoever delivers the data. A concrete
    topic is *open* while it has at least one concrete subscriber (reference counting);
    wildcard subscribers ride on open topics.
    """

    _concrete: dict[str, dict[str, Any]] = field(default_factory=dict)  # topic -> key -> sub
    _patterns: dict[str, dict[str, Any]] = field(default_factory=dict)  # pattern -> key -> sub

    def open_topics(self) -> list[str]:
        return sorted(self._concrete)

    def subscribers_of(self, topic: str) -> tuple[Any, ...]:
        """Everyone a concrete open topic is delivered to (concrete and wildcard subscribers)."""
        direct = self._concrete.get(topic)
        if not direct:
            return ()
        merged = dict(direct)
        for pattern, subs in self._patterns.items():
            if matches(pattern, topic):
                merged.update(subs)
        return tuple(merged[k] for k in sorted(merged))

    def subscribe(self, subscriber: Any, topics: Iterable[str]) -> list[str]:
        key = str(subscriber)
        changed: set[str] = set()
        for topic in topics:
            validate_subscription(topic)
            if is_concrete(topic):
                subs = self._concrete.setdefault(topic, {})
                if key not in subs:
                    subs[key] = subscriber
                    changed.add(topic)
            else:
                subs = self._patterns.setdefault(topic, {})
                if key not in subs:
                    subs[key] = subscriber
                    changed.update(t for t in self._concrete if matches(topic, t))
        return sorted(changed)

    def unsubscribe(self, subscriber: Any, topics: Iterable[str]) -> list[str]:
        key = str(subscriber)
        changed: set[str] = set()
        for topic in topics:
            table = self._concrete if is_concrete(topic) else self._patterns
            subs = table.get(topic)
            if not subs or key not in subs:
                continue
            del subs[key]
            if not subs:
                del table[topic]
            if table is self._concrete:
                changed.add(topic)
            else:
                changed.update(t for t in self._concrete if matches(topic, t))
        return sorted(changed)

    def drop_subscriber(self, subscriber: Any) -> list[str]:
        """Forget a subscriber entirely (it died)."""
        key = str(subscriber)
        topics = [t for t, subs in self._concrete.items() if key in subs]
        patterns = [p for p, subs in self._patterns.items() if key in subs]
        return sorted(set(self.unsubscribe(subscriber, topics + patterns)))

    def subscriptions(self) -> list[tuple[Any, tuple[str, ...]]]:
        """Every subscriber with all its topics and patterns (to replay into a new registry)."""
        by_key: dict[str, tuple[Any, list[str]]] = {}
        for table in (self._concrete, self._patterns):
            for topic, subs in table.items():
                for key, sub in subs.items():
                    by_key.setdefault(key, (sub, []))[1].append(topic)
        return [(sub, tuple(sorted(topics))) for sub, topics in by_key.values()]
