"""Topic names, wildcard matching and the reference-counted subscription registry (pure).

A market-data topic is ``kind.exchange.market.symbol`` (``book.binance.spot.BTC/USDT``); any
segment of a subscription may be ``*``. Symbols contain ``/`` and ``:`` but never ``.``, so the
dot is a safe separator.

An account topic is ``kind.exchange`` (``orders.binance``, ``fills.*``): the private stream of
one exchange's configured account, every market it trades (``ACCOUNT_KINDS``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# book: order book; trades: raw trades; bbo: best bid/offer; aggtrades: aggregated trades;
# mark: mark price and funding (perpetuals only); depth5/10/20: the venue's top-N book view
# (``BookTop``, apart from ``book``); ticker: rolling 24 h statistics. Klines are
# ``kline_<interval>`` (``is_market_kind``), not listed here.
MARKET_KINDS = frozenset(
    {"book", "trades", "bbo", "aggtrades", "mark", "depth5", "depth10", "depth20", "ticker"}
)
# The private stream's event kinds: OrderUpdate, Fill, BalanceUpdate, PositionUpdate.
ACCOUNT_KINDS = frozenset({"orders", "fills", "balances", "positions"})
KLINE_PREFIX = "kline_"
# Kline intervals in Binance notation (case-sensitive: 1m is a minute, 1M a month). A venue may
# serve fewer (1s is Binance spot only) and refuses the rest when the topic is routed.
KLINE_INTERVALS = (
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
)
KLINE_KINDS = frozenset(KLINE_PREFIX + i for i in KLINE_INTERVALS)
WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class Topic:
    kind: str
    exchange: str
    market: str
    symbol: str

    def __str__(self) -> str:
        if not self.market and not self.symbol:
            return f"{self.kind}.{self.exchange}"  # an account topic
        return f"{self.kind}.{self.exchange}.{self.market}.{self.symbol}"

    @property
    def is_account(self) -> bool:
        return not self.market and not self.symbol


def make_topic(kind: str, exchange: str, market: str, symbol: str) -> str:
    return f"{kind}.{exchange}.{market}.{symbol}"


def make_account_topic(kind: str, exchange: str) -> str:
    return f"{kind}.{exchange}"


def parse_topic(topic: str) -> Topic:
    """Split a market-data topic (``kind.exchange.market.symbol``) or an account topic
    (``kind.exchange``: ``market`` and ``symbol`` are empty); raises ValueError naming the
    expected forms."""
    parts = topic.split(".")
    if len(parts) == 2 and all(parts):
        return Topic(parts[0], parts[1], "", "")
    if len(parts) != 4 or not all(parts):
        raise ValueError(
            f"topic {topic!r} is not kind.exchange.market.symbol (e.g. book.binance.spot.BTC/USDT)"
            " nor an account topic kind.exchange (e.g. orders.binance)"
        )
    return Topic(*parts)


def is_account_topic(topic: str) -> bool:
    """``kind.exchange`` (two segments): an account topic or pattern."""
    return topic.count(".") == 1


def is_concrete(topic: str) -> bool:
    return WILDCARD not in topic.split(".")


def matches(pattern: str, topic: str) -> bool:
    """True when ``topic`` (concrete) is covered by ``pattern`` (segments may be ``*``)."""
    p_parts = pattern.split(".")
    t_parts = topic.split(".")
    if len(p_parts) != len(t_parts):
        return False
    return all(p in (WILDCARD, t) for p, t in zip(p_parts, t_parts, strict=True))


def is_market_kind(kind: str) -> bool:
    """A market-data topic kind: one of ``MARKET_KINDS`` or ``kline_<interval>``."""
    return kind in MARKET_KINDS or kind in KLINE_KINDS


def validate_subscription(topic: str) -> None:
    """Raises ValueError saying what is wrong with a topic and what would be accepted."""
    t = parse_topic(topic)
    if t.is_account:
        if t.kind == WILDCARD or t.kind in ACCOUNT_KINDS:
            return
        raise ValueError(
            f"topic {topic!r}: {t.kind!r} is not an account kind; account topics are "
            f"kind.exchange with kind one of {', '.join(sorted(ACCOUNT_KINDS))}; market data is "
            "kind.exchange.market.symbol (e.g. book.binance.spot.BTC/USDT)"
        )
    if t.kind in ACCOUNT_KINDS:
        raise ValueError(
            f"topic {topic!r}: account topics are kind.exchange (e.g. {t.kind}.{t.exchange}); "
            "the private stream carries every market and symbol of the account"
        )
    if t.kind == WILDCARD or is_market_kind(t.kind):
        return
    if t.kind.startswith(KLINE_PREFIX):
        raise ValueError(
            f"topic {topic!r}: unknown kline interval {t.kind[len(KLINE_PREFIX) :]!r}; "
            f"known: {', '.join(KLINE_INTERVALS)} (case-sensitive: 1m minute, 1M month)"
        )
    raise ValueError(
        f"topic {topic!r}: unknown kind {t.kind!r}; known: {', '.join(sorted(MARKET_KINDS))} "
        f"and {KLINE_PREFIX}<interval> (e.g. {KLINE_PREFIX}1m)"
    )


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
    # Why a subscriber holds a concrete topic: "" subscribed to it directly, else the patterns
    # that opened it (see ``expand``). It lets go of the topic when no reason is left.
    _reasons: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # exchange -> configured markets: what a pattern with wildcard venues opens
    markets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # exchanges with credentials: what an account pattern with a wildcard exchange opens
    accounts: tuple[str, ...] = ()

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
                if self._hold(topic, key, subscriber, ""):
                    changed.add(topic)
                continue
            subs = self._patterns.setdefault(topic, {})
            if key in subs:
                continue
            subs[key] = subscriber
            changed.update(t for t in self._concrete if matches(topic, t))
            for t in expand(topic, self.markets, self.accounts):
                self._hold(t, key, subscriber, topic)
                changed.add(t)
        return sorted(changed)

    def unsubscribe(self, subscriber: Any, topics: Iterable[str]) -> list[str]:
        key = str(subscriber)
        changed: set[str] = set()
        for topic in topics:
            if is_concrete(topic):
                if self._release(topic, key, ""):
                    changed.add(topic)
                continue
            subs = self._patterns.get(topic)
            if not subs or key not in subs:
                continue
            del subs[key]
            if not subs:
                del self._patterns[topic]
            changed.update(t for t in self._concrete if matches(topic, t))
            for t in expand(topic, self.markets, self.accounts):
                self._release(t, key, topic)
        return sorted(changed)

    def _hold(self, topic: str, key: str, subscriber: Any, reason: str) -> bool:
        """True when ``key`` newly holds ``topic``."""
        reasons = self._reasons.setdefault((topic, key), set())
        reasons.add(reason)
        subs = self._concrete.setdefault(topic, {})
        if key in subs:
            return False
        subs[key] = subscriber
        return True

    def _release(self, topic: str, key: str, reason: str) -> bool:
        """True when ``key`` no longer holds ``topic``."""
        reasons = self._reasons.get((topic, key))
        if reasons is None or reason not in reasons:
            return False
        reasons.discard(reason)
        if reasons:
            return False
        del self._reasons[(topic, key)]
        subs = self._concrete.get(topic, {})
        subs.pop(key, None)
        if not subs:
            self._concrete.pop(topic, None)
        return True

    def drop_subscriber(self, subscriber: Any) -> list[str]:
        """Forget a subscriber entirely (it died)."""
        key = str(subscriber)
        patterns = [p for p, subs in self._patterns.items() if key in subs]
        changed = set(self.unsubscribe(subscriber, patterns))
        topics = [t for t, subs in self._concrete.items() if key in subs]
        return sorted(changed | set(self.unsubscribe(subscriber, topics)))

    def subscriptions(self) -> list[tuple[Any, tuple[str, ...]]]:
        """Every subscriber with all its topics and patterns (to replay into a new registry)."""
        by_key: dict[str, tuple[Any, list[str]]] = {}
        for table in (self._concrete, self._patterns):
            for topic, subs in table.items():
                for key, sub in subs.items():
                    if table is self._concrete and "" not in self._reasons.get((topic, key), ()):
                        continue  # opened by a pattern: replaying the pattern opens it again
                    by_key.setdefault(key, (sub, []))[1].append(topic)
        return [(sub, tuple(sorted(topics))) for sub, topics in by_key.values()]


def expand(
    pattern: str, markets: dict[str, tuple[str, ...]], accounts: Iterable[str] = ()
) -> list[str]:
    """The concrete topics a pattern opens: one whose kind and symbol are named and whose
    exchange or market is ``*`` (``book.*.*.BTC/USDT``) opens that topic on every configured
    venue whose market takes that symbol form (``BASE/QUOTE`` spot, ``BASE/QUOTE:SETTLE``
    linear). A pattern with a wildcard kind or symbol opens nothing (it would mean every
    kind or every listed symbol): it rides on topics others open. An account pattern naming
    its kind (``fills.*``) opens that kind on every exchange in ``accounts`` (those with
    credentials); ``*.binance`` opens nothing."""
    t = parse_topic(pattern)
    if t.is_account:
        if t.kind == WILDCARD or is_concrete(pattern):
            return []
        return [make_account_topic(t.kind, ex) for ex in sorted(set(accounts))]
    if WILDCARD in (t.kind, t.symbol) or is_concrete(pattern):
        return []
    wanted_market = "linear" if ":" in t.symbol else "spot"
    return [
        make_topic(t.kind, exchange, market, t.symbol)
        for exchange, configured in sorted(markets.items())
        if t.exchange in (WILDCARD, exchange)
        for market in configured
        if market == wanted_market and t.market in (WILDCARD, market)
    ]
