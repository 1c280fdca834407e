"""What exconn connects to: exchanges, environment, explicit URLs, and the actor system's
network settings.

URLs are explicit per venue so the same code runs against live, testnet, demo, a proxy or the
built-in simulator (``Config.for_sim``).
"""

from __future__ import annotations

import os

import msgspec

from exconn.delivery import DEFAULT_MAX_IN_FLIGHT
from exconn.errors import ConfigError
from exconn.model.enums import Exchange, Market
from exconn.venues.driver import driver_for

ENVIRONMENTS = ("live", "testnet", "demo", "sim")


class VenueUrls(msgspec.Struct, frozen=True):
    rest: str
    ws: str


class WsSettings(msgspec.Struct, frozen=True):
    """Market-data WebSocket lifecycle. Defaults follow Binance (binance.md §6, §8.1); tests
    compress the times to run against a simulator with a short connection cap."""

    # None: the venue's limit (Binance spot 1024, USD-M 200 streams per connection).
    max_streams_per_connection: int | None = None
    # SUBSCRIBE/UNSUBSCRIBE per rolling second, pongs included; Binance closes above 5.
    control_messages_per_s: int = 4
    # Replace a socket this long before the venue's connection cap closes it.
    max_connection_age_s: float = 24 * 3600.0
    rotate_before_s: float = 600.0
    # A stream with an expected cadence (diff depth) silent this long is resubscribed, and
    # the socket replaced if it stays silent as long again.
    stream_silence_s: float = 30.0
    # How long a replacement socket may take to catch up before it takes over anyway.
    rotation_timeout_s: float = 10.0
    # After a socket loss subscribers keep their books (unchanged) this long while a new
    # socket continues them; then they get a BookReset.
    held_book_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    # Event batches outstanding per subscriber; a subscriber slower than the feed gets the
    # rest conflated (book updates merged, states replaced; trades never), see exconn.delivery.
    subscriber_max_in_flight: int = DEFAULT_MAX_IN_FLIGHT

    def __post_init__(self) -> None:
        if self.subscriber_max_in_flight < 1:
            raise ConfigError("subscriber_max_in_flight must be at least 1")


class ExchangeConfig(msgspec.Struct, frozen=True):
    name: str
    environment: str = "live"
    markets: tuple[str, ...] = ("spot",)
    # market -> URLs; missing markets use the environment's built-in URLs
    urls: dict[str, VenueUrls] = msgspec.field(default_factory=dict)
    depth_limit: int = 1000  # REST snapshot depth (Binance spot weight 50 at 1000)
    ws: WsSettings = msgspec.field(default_factory=WsSettings)
    # Directory of the REST request budgets shared by every process of the actor system (one
    # file per host, exconn.transport.ratelimit). ``exconn.start`` fills it with a directory
    # of its own (removed at shutdown) when None; set it to share one budget between several
    # exconn systems on the same IP. None outside a system: each process counts alone.
    rest_budget_dir: str | None = None

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
        try:
            rest, ws = driver_for(self.name).default_urls(Market(market), self.environment)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return VenueUrls(rest=rest, ws=ws)


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
    def for_sim(
        cls,
        rest_url: str | None,
        ws_url: str | None,
        *,
        log_level: str = "WARNING",
        linear: tuple[str, str] | None = None,
        ws: WsSettings | None = None,
        bybit: tuple[str, str] | None = None,
        bybit_markets: tuple[str, ...] = ("spot", "linear"),
    ) -> Config:
        """Exchanges against running ``exconn.sim`` simulators. Binance: spot at
        ``rest_url``/``ws_url`` (None: no spot) and USD-M at ``linear`` = (rest_url, ws_url) of
        a ``BinanceUsdmSim``. Bybit: ``bybit`` = (rest_url, ws_url) of a ``BybitSim``, serving
        ``bybit_markets`` on its ``/v5/public/<category>`` streams."""
        exchanges: list[ExchangeConfig] = []
        if bybit is not None:
            rest, ws_base = bybit
            exchanges.append(
                ExchangeConfig(
                    name="bybit",
                    environment="sim",
                    markets=bybit_markets,
                    urls={
                        m: VenueUrls(rest=rest, ws=f"{ws_base.rstrip('/')}/v5/public/{m}")
                        for m in bybit_markets
                    },
                    ws=ws or WsSettings(),
                )
            )
        urls: dict[str, VenueUrls] = {}
        if rest_url is not None and ws_url is not None:
            urls["spot"] = VenueUrls(rest=rest_url, ws=ws_url)
        if linear is not None:
            urls["linear"] = VenueUrls(rest=linear[0], ws=linear[1])
        if urls or not exchanges:
            exchanges.insert(
                0,
                ExchangeConfig(
                    name="binance",
                    environment="sim",
                    markets=tuple(urls),
                    urls=urls,
                    ws=ws or WsSettings(),
                ),
            )
        return cls(exchanges=tuple(exchanges), log_level=log_level)
