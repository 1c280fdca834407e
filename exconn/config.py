"""What exconn connects to: exchanges, environment, explicit URLs, and the actor system's
network settings.

URLs are explicit per venue so the same code runs against live, testnet, demo, a proxy or the
built-in simulator (``Config.for_sim``).
"""

from __future__ import annotations

import os

import msgspec

from exconn.errors import ConfigError
from exconn.model.enums import Exchange, Market
from exconn.venues.binance import urls as binance_urls

ENVIRONMENTS = ("live", "testnet", "demo", "sim")


class VenueUrls(msgspec.Struct, frozen=True):
    rest: str
    ws: str


class ExchangeConfig(msgspec.Struct, frozen=True):
    name: str
    environment: str = "live"
    markets: tuple[str, ...] = ("spot",)
    # market -> URLs; missing markets use the environment's built-in URLs
    urls: dict[str, VenueUrls] = msgspec.field(default_factory=dict)
    depth_limit: int = 1000  # REST snapshot depth (Binance spot weight 50 at 1000)

    def __post_init__(self) -> None:
        if self.name not in {e.value for e in Exchange}:
            raise ConfigError(f"unknown exchange {self.name!r}; known: binance, bybit")
        if self.environment not in ENVIRONMENTS:
            raise ConfigError(f"{self.name}: environment must be one of {ENVIRONMENTS}")
        for m in self.markets:
            if m not in {x.value for x in Market}:
                raise ConfigError(f"{self.name}: unknown market {m!r}; known: spot, linear")

    def urls_for(self, market: str) -> VenueUrls:
        if market in self.urls:
            return self.urls[market]
        if self.environment == "sim":
            raise ConfigError(f"{self.name} {market}: environment 'sim' needs explicit URLs")
        if self.name == Exchange.BINANCE:
            rest, ws = binance_urls.default_urls(Market(market), self.environment)
            return VenueUrls(rest=rest, ws=ws)
        raise ConfigError(f"{self.name} {market}: not supported yet")


class Config(msgspec.Struct, frozen=True):
    exchanges: tuple[ExchangeConfig, ...]
    log_level: str = "INFO"
    # Thespian's admin port; None picks a free one. Thespian accepts pickles on its ports:
    # keep bind_address private (default loopback) and firewall the port on multi-host setups.
    admin_port: int | None = None
    bind_address: str = "127.0.0.1"
    start_timeout: float = 30.0

    @classmethod
    def from_env(cls) -> Config:
        """Binance spot in ``EXCONN_ENV`` (default live); ``EXCONN_LOG_LEVEL``."""
        env = os.environ.get("EXCONN_ENV", "live")
        return cls(
            exchanges=(ExchangeConfig(name="binance", environment=env),),
            log_level=os.environ.get("EXCONN_LOG_LEVEL", "INFO"),
        )

    @classmethod
    def for_sim(cls, rest_url: str, ws_url: str, *, log_level: str = "WARNING") -> Config:
        """Binance spot against a running ``exconn.sim`` simulator."""
        return cls(
            exchanges=(
                ExchangeConfig(
                    name="binance",
                    environment="sim",
                    urls={"spot": VenueUrls(rest=rest_url, ws=ws_url)},
                ),
            ),
            log_level=log_level,
        )
