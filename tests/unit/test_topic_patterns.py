"""Patterns that name venues by wildcard open the topic on every configured venue (issue 5:
one engine subscribed to ``book.*.*.BTC/USDT`` gets both venues' books)."""

from __future__ import annotations

from exconn.topics import SubscriptionRegistry, expand

MARKETS = {"binance": ("spot", "linear"), "bybit": ("spot", "linear")}


def test_venue_wildcards_expand_to_markets_of_the_symbols_form() -> None:
    assert expand("book.*.*.BTC/USDT", MARKETS) == [
        "book.binance.spot.BTC/USDT",
        "book.bybit.spot.BTC/USDT",
    ]
    assert expand("trades.bybit.*.BTC/USDT:USDT", MARKETS) == ["trades.bybit.linear.BTC/USDT:USDT"]
    assert expand("book.*.spot.BTC/USDT", {"binance": ("linear",)}) == []


def test_kind_or_symbol_wildcards_open_nothing() -> None:
    assert expand("trades.bybit.linear.*", MARKETS) == []
    assert expand("*.binance.spot.BTC/USDT", MARKETS) == []
    assert expand("book.binance.spot.BTC/USDT", MARKETS) == []  # concrete: not a pattern


def test_pattern_opens_and_closes_its_topics() -> None:
    reg = SubscriptionRegistry(markets=MARKETS)
    changed = reg.subscribe("engine", ["book.*.*.BTC/USDT"])
    assert changed == ["book.binance.spot.BTC/USDT", "book.bybit.spot.BTC/USDT"]
    assert reg.subscribers_of("book.bybit.spot.BTC/USDT") == ("engine",)
    assert reg.unsubscribe("engine", ["book.*.*.BTC/USDT"]) == changed
    assert reg.open_topics() == []


def test_direct_and_pattern_subscriptions_are_counted_apart() -> None:
    reg = SubscriptionRegistry(markets=MARKETS)
    reg.subscribe("engine", ["book.binance.spot.BTC/USDT", "book.*.*.BTC/USDT"])
    reg.unsubscribe("engine", ["book.*.*.BTC/USDT"])
    # still held directly: one delivery, not two, and not closed
    assert reg.open_topics() == ["book.binance.spot.BTC/USDT"]
    assert reg.subscribers_of("book.binance.spot.BTC/USDT") == ("engine",)
    assert reg.subscriptions() == [("engine", ("book.binance.spot.BTC/USDT",))]


def test_replay_lists_the_pattern_not_its_expansions() -> None:
    reg = SubscriptionRegistry(markets=MARKETS)
    reg.subscribe("engine", ["book.*.*.BTC/USDT"])
    assert reg.subscriptions() == [("engine", ("book.*.*.BTC/USDT",))]
    assert reg.drop_subscriber("engine") == [
        "book.binance.spot.BTC/USDT",
        "book.bybit.spot.BTC/USDT",
    ]
    assert reg.open_topics() == []
