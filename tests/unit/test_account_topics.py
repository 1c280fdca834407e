"""Account topics (``kind.exchange``), the private-stream actor's pure parts, the drivers'
private-stream surface and credentials in the configuration."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from exconn import errors
from exconn.actors.user_stream import Handshake, Step, route_events
from exconn.config import (
    SEAL_KEY_ENV,
    Config,
    ExchangeConfig,
    SealedCredentials,
    new_seal_key,
    seal_credentials,
)
from exconn.delivery import Delivery
from exconn.messages import AccountStreamError, BalanceUpdate, Fill, OrderUpdate
from exconn.model.enums import Market, OrderSide, OrderStatus, OrderType
from exconn.outbox import Outbox, routes_of
from exconn.topics import (
    ACCOUNT_KINDS,
    SubscriptionRegistry,
    expand,
    is_account_topic,
    matches,
    parse_topic,
    validate_subscription,
)
from exconn.venues.driver import driver_for
from exconn.venues.keys import Credentials

TS = datetime(2026, 1, 1, tzinfo=UTC)


# -- topics ---------------------------------------------------------------------------------------
def test_account_topics_parse_and_print() -> None:
    t = parse_topic("orders.binance")
    assert (t.kind, t.exchange, t.market, t.symbol) == ("orders", "binance", "", "")
    assert t.is_account and str(t) == "orders.binance"
    assert not parse_topic("book.binance.spot.BTC/USDT").is_account
    assert is_account_topic("fills.*") and not is_account_topic("book.binance.spot.BTC/USDT")
    with pytest.raises(ValueError, match=r"kind\.exchange"):
        parse_topic("orders.binance.spot")


@pytest.mark.parametrize("kind", sorted(ACCOUNT_KINDS))
def test_every_account_kind_is_accepted(kind: str) -> None:
    validate_subscription(f"{kind}.binance")
    validate_subscription(f"{kind}.*")


def test_account_and_market_forms_do_not_mix() -> None:
    validate_subscription("*.bybit")
    with pytest.raises(ValueError, match=r"account topics are kind\.exchange"):
        validate_subscription("orders.binance.spot.BTC/USDT")
    with pytest.raises(ValueError, match="not an account kind"):
        validate_subscription("book.binance")
    with pytest.raises(ValueError, match="not an account kind"):
        validate_subscription("trades.bybit")


def test_account_patterns_match_only_account_topics() -> None:
    assert matches("fills.*", "fills.bybit")
    assert matches("*.binance", "orders.binance")
    assert not matches("*.binance", "book.binance.spot.BTC/USDT")
    assert not matches("*.*.*.*", "orders.binance")
    assert not matches("fills.*", "orders.bybit")


def test_expand_opens_account_kinds_on_exchanges_with_credentials() -> None:
    markets = {"binance": ("spot",), "bybit": ("spot", "linear")}
    assert expand("fills.*", markets, ("binance", "bybit")) == ["fills.binance", "fills.bybit"]
    assert expand("fills.*", markets, ("bybit",)) == ["fills.bybit"]
    assert expand("*.binance", markets, ("binance",)) == []  # wildcard kind opens nothing
    assert expand("orders.binance", markets, ("binance",)) == []  # concrete: not a pattern
    # market-data patterns unchanged
    assert expand("book.*.*.BTC/USDT", markets, ("binance",)) == [
        "book.binance.spot.BTC/USDT",
        "book.bybit.spot.BTC/USDT",
    ]


def test_registry_reference_counts_account_topics() -> None:
    reg = SubscriptionRegistry(markets={"binance": ("spot",)}, accounts=("binance",))
    assert reg.subscribe("a", ["orders.binance"]) == ["orders.binance"]
    assert reg.subscribe("b", ["orders.*"]) == ["orders.binance"]
    assert reg.subscribe("c", ["*.binance"]) == ["orders.binance"]  # rides along
    assert reg.subscribers_of("orders.binance") == ("a", "b", "c")
    assert reg.unsubscribe("a", ["orders.binance"]) == ["orders.binance"]
    assert reg.open_topics() == ["orders.binance"]  # b's pattern still holds it
    assert reg.unsubscribe("b", ["orders.*"]) == ["orders.binance"]
    assert reg.open_topics() == []
    assert reg.subscribers_of("orders.binance") == ()
    # market data alongside is unaffected
    assert reg.subscribe("a", ["book.binance.spot.BTC/USDT", "fills.binance"]) == [
        "book.binance.spot.BTC/USDT",
        "fills.binance",
    ]


# -- the actor's pure parts ----------------------------------------------------------------------
def _handler(**state: Any) -> SimpleNamespace:
    base: dict[str, Any] = {"auth_error": None, "error": None, "subscribed": False}
    base.update(state)
    return SimpleNamespace(**base)


def test_handshake_waits_goes_live_and_times_out() -> None:
    h = Handshake(10.0)
    assert h.opened(100.0) == 10.0
    assert h.step(_handler()) is Step.WAIT
    assert not h.timed_out(109.9) and h.timed_out(110.0)
    assert h.step(_handler(subscribed=True)) is Step.LIVE
    assert not h.timed_out(1e9)  # acknowledged: no deadline


def test_handshake_decisions() -> None:
    auth = errors.AuthError(exchange="bybit", code=10003)
    assert Handshake(1).step(_handler(auth_error=auth, error=auth)) is Step.AUTH_FAILED
    assert Handshake(1).step(_handler(needs_listen_key=True)) is Step.NEW_KEY
    skew = errors.ClockSkew(exchange="binance", code=-1021)
    assert Handshake(1).step(_handler(error=skew)) is Step.RECONNECT
    h = Handshake(1)
    assert h.step(_handler(subscribed=True)) is Step.LIVE
    # spot eventStreamTerminated: subscribed falls back to False -> subscribe again, once
    assert h.step(_handler()) is Step.RESUBSCRIBE
    assert h.step(_handler()) is Step.WAIT


def _order(status: OrderStatus, filled: str) -> OrderUpdate:
    return OrderUpdate(
        exchange="binance",
        market="spot",
        symbol="BTC/USDT",
        client_order_id="c1",
        exchange_order_id="1",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        time_in_force=None,
        status=status,
        price=Decimal("100"),
        qty=Decimal("2"),
        filled_qty=Decimal(filled),
        avg_price=None,
        ts=TS,
    )


def _fill(trade_id: str) -> Fill:
    return Fill(
        exchange="binance",
        market="spot",
        symbol="BTC/USDT",
        trade_id=trade_id,
        exchange_order_id="1",
        client_order_id="c1",
        side=OrderSide.BUY,
        price=Decimal("100"),
        qty=Decimal("1"),
        fee=Decimal("0"),
        fee_asset="USDT",
        is_maker=False,
        ts=TS,
    )


def test_route_events_by_kind_in_order() -> None:
    o1, f1 = _order(OrderStatus.PARTIALLY_FILLED, "1"), _fill("t1")
    bal = BalanceUpdate(exchange="binance", market="spot", asset="USDT", ts=TS, free=Decimal(1))
    routes = {"orders": routes_of(["a", "b"]), "fills": routes_of(["b"])}
    out = Outbox()
    route_events([o1, f1, bal], routes, out)
    assert out.events_for("a") == [o1]
    assert out.events_for("b") == [o1, f1]  # nobody wants balances


def test_delivery_never_merges_account_events() -> None:
    d = Delivery(max_in_flight=1, unmerged_drains=0)
    assert d.offer("s", [_order(OrderStatus.NEW, "0")])
    drains = [
        [_order(OrderStatus.PARTIALLY_FILLED, "1"), _fill("t1")],
        [_order(OrderStatus.FILLED, "2"), _fill("t2")],
    ]
    for drain in drains:
        assert not d.offer("s", list(drain))
    sent = d.completed("s")
    assert sent is not None
    assert sent[0] == [e for drain in drains for e in drain] and d.conflated == 0


# -- drivers --------------------------------------------------------------------------------------
def test_drivers_group_markets_into_private_streams() -> None:
    binance, bybit = driver_for("binance"), driver_for("bybit")
    assert binance.user_streams(["spot", "linear"]) == [("spot",), ("linear",)]
    assert bybit.user_streams(["spot", "linear"]) == [("spot", "linear")]
    assert bybit.user_streams([]) == []
    assert binance.listen_key_steps(Market.LINEAR) is not None
    assert binance.listen_key_steps(Market.SPOT) is None
    assert bybit.listen_key_steps(Market.LINEAR) is None
    assert binance.user_ping_interval_s is None and bybit.user_ping_interval_s == 20.0
    assert binance.private_url(Market.SPOT, "live").endswith("/ws-api/v3")
    assert bybit.private_url(Market.SPOT, "testnet").endswith("/v5/private")
    with pytest.raises(ValueError):
        binance.private_url(Market.SPOT, "sim")


def test_drivers_expose_the_same_private_stream_surface() -> None:
    names = (
        "user_ping_interval_s",
        "private_url",
        "user_streams",
        "user_stream_handler",
        "user_connect_url",
        "listen_key_steps",
    )
    for exchange in ("binance", "bybit"):
        d = driver_for(exchange)
        assert all(hasattr(d, n) for n in names), exchange


# -- credentials ----------------------------------------------------------------------------------
def test_config_holds_credentials_without_showing_or_pickling_them() -> None:
    creds = Credentials("abcdefghijkl", secret="very-secret-value")
    config = Config.for_sim("http://r", "ws://w", binance_keys=creds)
    assert "very-secret-value" not in repr(config)
    with pytest.raises(TypeError):
        pickle.dumps(config)
    assert config.exchanges[0].private_url_for("spot") == "ws://w/ws-api/v3"
    with pytest.raises(errors.ConfigError, match="credentials"):
        ExchangeConfig(name="binance", credentials=("k", "s"))


def test_sealed_credentials_pickle_as_ciphertext_and_open_with_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = Config.for_sim(
        None, None, bybit=("http://r", "ws://w"), bybit_keys=("abcdefghijkl", "very-secret-value")
    )
    key = new_seal_key()
    sealed = seal_credentials(config, key)
    data = pickle.dumps(sealed)
    assert b"very-secret-value" not in data and "very-secret-value" not in repr(sealed)
    restored = pickle.loads(data).exchanges[0].credentials
    assert isinstance(restored, SealedCredentials)
    monkeypatch.delenv(SEAL_KEY_ENV, raising=False)
    with pytest.raises(errors.ConfigError, match="outside"):
        restored.open()
    monkeypatch.setenv(SEAL_KEY_ENV, new_seal_key().decode())
    with pytest.raises(errors.ConfigError, match="do not fit"):
        restored.open()
    monkeypatch.setenv(SEAL_KEY_ENV, key.decode())
    opened = restored.open()
    assert opened.api_key == "abcdefghijkl"
    assert opened.sign("x") == Credentials("abcdefghijkl", secret="very-secret-value").sign("x")
    assert sealed.exchanges[0].private_url_for("linear") == "ws://w/v5/private"


def test_sealed_private_key_credentials_sign_the_same() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    creds = Credentials("ed-key", private_key_pem=pem)
    key = new_seal_key()
    sealed = SealedCredentials.seal(creds, key)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SEAL_KEY_ENV, key.decode())
        assert sealed.open().sign("payload") == creds.sign("payload")


def test_from_env_reads_the_binance_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCONN_BINANCE_API_KEY", "env-key-123")
    monkeypatch.setenv("EXCONN_BINANCE_API_SECRET", "env-secret")
    creds = Config.from_env().exchanges[0].credentials
    assert isinstance(creds, Credentials) and creds.api_key == "env-key-123"
    monkeypatch.delenv("EXCONN_BINANCE_API_KEY")
    assert Config.from_env().exchanges[0].credentials is None
    monkeypatch.setenv("EXCONN_BINANCE_API_KEY", "env-key-123")
    monkeypatch.setenv("EXCONN_BINANCE_PRIVATE_KEY_FILE", "/nonexistent.pem")
    with pytest.raises(errors.ConfigError, match="exactly one"):
        Config.from_env()


def test_account_stream_error_pickles_with_the_venue_code() -> None:
    notice = AccountStreamError(
        exchange="bybit",
        market="spot,linear",
        error=errors.AuthError(exchange="bybit", code=10003, venue_message="Invalid apikey"),
    )
    back = pickle.loads(pickle.dumps(notice))
    assert isinstance(back.error, errors.AuthError) and back.error.code == 10003
