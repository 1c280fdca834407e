from __future__ import annotations

import pytest

from exconn.topics import SubscriptionRegistry, matches, parse_topic


def test_parse_and_match() -> None:
    t = parse_topic("book.binance.spot.BTC/USDT")
    assert (t.kind, t.exchange, t.market, t.symbol) == ("book", "binance", "spot", "BTC/USDT")
    assert matches("book.*.*.BTC/USDT", "book.binance.spot.BTC/USDT")
    assert matches("trades.binance.spot.*", "trades.binance.spot.ETH/USDT")
    assert not matches("trades.binance.spot.*", "book.binance.spot.ETH/USDT")
    with pytest.raises(ValueError):
        parse_topic("book.binance.BTC/USDT")


def test_reference_counting_opens_and_closes() -> None:
    reg = SubscriptionRegistry()
    topic = "book.binance.spot.BTC/USDT"
    assert reg.subscribe("a", [topic]) == [topic]
    assert reg.subscribe("a", [topic]) == []  # idempotent
    assert reg.subscribe("b", [topic]) == [topic]
    assert reg.subscribers_of(topic) == ("a", "b")
    assert reg.unsubscribe("a", [topic]) == [topic]
    assert reg.subscribers_of(topic) == ("b",)
    assert reg.unsubscribe("b", [topic]) == [topic]
    assert reg.subscribers_of(topic) == () and reg.open_topics() == []


def test_wildcards_ride_on_open_topics_without_opening() -> None:
    reg = SubscriptionRegistry()
    assert reg.subscribe("w", ["book.*.*.BTC/USDT"]) == []  # nothing open yet
    assert reg.subscribe("c", ["book.binance.spot.BTC/USDT"]) == ["book.binance.spot.BTC/USDT"]
    assert reg.subscribers_of("book.binance.spot.BTC/USDT") == ("c", "w")
    assert reg.unsubscribe("w", ["book.*.*.BTC/USDT"]) == ["book.binance.spot.BTC/USDT"]
    assert reg.subscribers_of("book.binance.spot.BTC/USDT") == ("c",)


def test_drop_subscriber() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe("a", ["book.binance.spot.BTC/USDT", "trades.binance.spot.BTC/USDT"])
    assert reg.drop_subscriber("a") == [
        "book.binance.spot.BTC/USDT",
        "trades.binance.spot.BTC/USDT",
    ]


def test_subscriptions_replay_into_a_new_registry() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe("a", ["book.binance.spot.BTC/USDT", "trades.*.*.*"])
    reg.subscribe("b", ["book.binance.spot.BTC/USDT"])
    copy = SubscriptionRegistry()
    for sub, topics in reg.subscriptions():
        copy.subscribe(sub, topics)
    assert copy.open_topics() == reg.open_topics()
    assert copy.subscriptions() == reg.subscriptions()
    assert copy.subscribers_of("book.binance.spot.BTC/USDT") == ("a", "b")
