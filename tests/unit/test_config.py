from __future__ import annotations

import pickle

import pytest

from exconn.config import Config, ExchangeConfig, VenueUrls
from exconn.errors import ConfigError


def test_builtin_urls_per_environment_and_explicit_overrides() -> None:
    live = ExchangeConfig(name="binance", markets=("spot", "linear"))
    assert live.urls_for("spot").rest == "https://api.binance.com"
    # USD-M market data is on the routed URLs since 2026-04 (binance.md §8.1).
    assert live.urls_for("linear").ws.startswith("wss://fstream.binance.com")
    proxied = ExchangeConfig(
        name="binance", urls={"spot": VenueUrls(rest="http://proxy", ws="ws://proxy")}
    )
    assert proxied.urls_for("spot") == VenueUrls(rest="http://proxy", ws="ws://proxy")


def test_bad_configuration_is_a_config_error_saying_what() -> None:
    with pytest.raises(ConfigError, match="unknown exchange"):
        ExchangeConfig(name="kraken")
    with pytest.raises(ConfigError, match="environment"):
        ExchangeConfig(name="binance", environment="prod")
    with pytest.raises(ConfigError, match="market"):
        ExchangeConfig(name="binance", markets=("options",))
    with pytest.raises(ConfigError, match="explicit URLs"):
        ExchangeConfig(name="binance", environment="sim").urls_for("spot")


def test_for_sim_spot_and_linear() -> None:
    cfg = Config.for_sim("http://a", "ws://a", linear=("http://b", "ws://b"))
    (binance,) = cfg.exchanges
    assert binance.markets == ("spot", "linear")
    assert binance.urls_for("linear").rest == "http://b"
    assert Config.for_sim(None, None, linear=("http://b", "ws://b")).exchanges[0].markets == (
        "linear",
    )
    assert cfg.bind_address == "127.0.0.1"  # Thespian must not listen publicly by default
    assert pickle.loads(pickle.dumps(cfg)) == cfg  # travels to the actors


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCONN_ENV", "testnet")
    monkeypatch.setenv("EXCONN_LOG_LEVEL", "DEBUG")
    cfg = Config.from_env()
    assert cfg.log_level == "DEBUG"
    assert cfg.exchanges[0].urls_for("spot").rest == "https://testnet.binance.vision"


def test_from_env_reads_each_exchange_and_its_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCONN_EXCHANGES", "binance, bybit")
    monkeypatch.setenv("EXCONN_BYBIT_MARKETS", "spot,linear")
    monkeypatch.setenv("EXCONN_BYBIT_API_KEY", "bybit-key")
    monkeypatch.setenv("EXCONN_BYBIT_API_SECRET", "bybit-secret-value")
    monkeypatch.delenv("EXCONN_BINANCE_API_KEY", raising=False)
    cfg = Config.from_env()
    binance, bybit = cfg.exchanges
    assert (binance.name, binance.markets, binance.credentials) == ("binance", ("spot",), None)
    assert (bybit.name, bybit.markets) == ("bybit", ("spot", "linear"))
    assert bybit.credentials.api_key == "bybit-key"
    assert "bybit-secret-value" not in repr(cfg)


def test_from_env_refuses_an_unknown_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCONN_EXCHANGES", "kraken")
    with pytest.raises(ConfigError, match="unknown exchange"):
        Config.from_env()
