"""What exconn connects to: exchanges, environment, explicit URLs, and the actor system's
network settings.

URLs are explicit per venue so the same code runs against live, testnet, demo, a proxy or the
built-in simulator (``Config.for_sim``).

Credentials (``exconn.venues.keys.Credentials``) never pickle. ``exconn.start`` seals each
exchange's credentials with a key made for that actor system (``SealedCredentials``): the
sealing key reaches the system's processes through their environment (inherited when Thespian
starts them), never through a message, so a pickle of the configuration holds only ciphertext
and is useless on another host. Only the private-stream actor opens them, in its own process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec

from exconn.delivery import DEFAULT_MAX_IN_FLIGHT
from exconn.errors import ConfigError
from exconn.model.enums import Exchange, Market
from exconn.venues.driver import driver_for
from exconn.venues.keys import Credentials, KeyKind

ENVIRONMENTS = ("live", "testnet", "demo", "sim")
ORDER_ENTRY = ("rest", "ws")
# Environment variable holding the sealing key of the running system's credentials.
SEAL_KEY_ENV = "EXCONN_SEAL_KEY"


class SealedCredentials:
    """``Credentials`` encrypted (Fernet) with the actor system's sealing key; what crosses
    process boundaries inside the system. Its repr shows the key kind and the API key's first
    four characters, as ``Credentials`` does; ``open()`` works only in a process that holds
    the sealing key (``SEAL_KEY_ENV``)."""

    __slots__ = ("kind", "shown", "token")

    def __init__(self, token: bytes, kind: str, shown: str) -> None:
        self.token = token
        self.kind = kind
        self.shown = shown

    @classmethod
    def seal(cls, credentials: Credentials, key: bytes) -> SealedCredentials:
        from cryptography.fernet import Fernet

        material: dict[str, str] = {"api_key": credentials.api_key}
        if credentials.kind is KeyKind.HMAC:
            material["secret"] = credentials._secret.decode()
        else:
            from cryptography.hazmat.primitives import serialization

            material["pem"] = credentials._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        token = Fernet(key).encrypt(json.dumps(material).encode())
        return cls(token, credentials.kind.value, repr(credentials))

    def open(self) -> Credentials:
        """The credentials; ConfigError where the sealing key is missing or does not fit."""
        from cryptography.fernet import Fernet, InvalidToken

        key = os.environ.get(SEAL_KEY_ENV)
        if not key:
            raise ConfigError("sealed credentials cannot be opened outside their exconn system")
        try:
            material = json.loads(Fernet(key.encode()).decrypt(self.token))
        except (InvalidToken, ValueError):
            raise ConfigError("sealed credentials do not fit this system's key") from None
        return Credentials(
            material["api_key"],
            secret=material.get("secret"),
            private_key_pem=material.get("pem"),
        )

    def __reduce__(self) -> Any:
        return (SealedCredentials, (self.token, self.kind, self.shown))

    def __repr__(self) -> str:
        return f"Sealed{self.shown}"

    __str__ = __repr__


def new_seal_key() -> bytes:
    from cryptography.fernet import Fernet

    return Fernet.generate_key()


class VenueUrls(msgspec.Struct, frozen=True):
    rest: str
    ws: str
    # The private (user data) WebSocket: Binance spot's WebSocket API (``.../ws-api/v3``),
    # USD-M's stream host (the listenKey path is added), Bybit's ``/v5/private``. None: the
    # environment's built-in one.
    private: str | None = None
    # The order-entry WebSocket (``order_entry="ws"``): Binance spot's WebSocket API, Bybit's
    # ``/v5/trade``. None: the environment's built-in one.
    trade: str | None = None


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
    # Private stream: how long the venue may take to acknowledge the auth/subscribe (or a
    # USD-M socket to open) before the socket is closed and opened again with backoff.
    auth_timeout_s: float = 10.0
    # Private stream liveness (an account's stream may be silent for hours, so silence alone
    # proves nothing): a heartbeat the venue must answer goes out this often (Bybit
    # ``{"op":"ping"}``, Binance a WebSocket ping frame; never less often than the venue asks),
    # and a socket from which nothing at all arrived for ``private_silence_s`` is taken for
    # stalled: closed and opened again with backoff, then reconciled over REST.
    private_heartbeat_s: float = 20.0
    private_silence_s: float = 30.0

    def __post_init__(self) -> None:
        if self.subscriber_max_in_flight < 1:
            raise ConfigError("subscriber_max_in_flight must be at least 1")
        if not 0 < self.private_heartbeat_s < self.private_silence_s:
            raise ConfigError("private_silence_s must exceed private_heartbeat_s (> 0)")


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
    # The account's API key (``exconn.venues.keys.Credentials``; ``exconn.start`` turns it into
    # ``SealedCredentials``). None: no account topics for this exchange.
    credentials: Any = None
    # How orders are sent: "rest", or "ws" for the venue's order-entry WebSocket where it has
    # one (Binance spot WebSocket API, Bybit ``/v5/trade``; Binance USD-M stays on REST), with
    # the same semantics (see ``order_ws_urls``).
    order_entry: str = "rest"

    def __post_init__(self) -> None:
        if self.credentials is not None and not isinstance(
            self.credentials, Credentials | SealedCredentials
        ):
            raise ConfigError(f"{self.name}: credentials must be exconn.venues.keys.Credentials")
        if self.name not in {e.value for e in Exchange}:
            raise ConfigError(f"unknown exchange {self.name!r}; known: binance, bybit")
        if self.environment not in ENVIRONMENTS:
            raise ConfigError(f"{self.name}: environment must be one of {ENVIRONMENTS}")
        for m in self.markets:
            if m not in {x.value for x in Market}:
                raise ConfigError(f"{self.name}: unknown market {m!r}; known: spot, linear")
        if self.order_entry not in ORDER_ENTRY:
            raise ConfigError(f"{self.name}: order_entry must be one of {ORDER_ENTRY}")
        if self.order_entry == "ws" and self.name == "bybit" and self.environment == "demo":
            raise ConfigError("bybit: the demo environment has no /v5/trade; use order_entry=rest")
        self.order_ws_urls()  # a missing order-entry URL is a configuration error, found now

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

    def private_url_for(self, market: str) -> str:
        """The private WebSocket serving ``market`` (explicit in ``urls`` or built in)."""
        explicit = self.urls.get(market)
        if explicit is not None and explicit.private is not None:
            return explicit.private
        if self.environment == "sim":
            raise ConfigError(f"{self.name} {market}: environment 'sim' needs a private URL")
        try:
            return driver_for(self.name).private_url(Market(market), self.environment)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def order_ws_urls(self) -> dict[str, str]:
        """Market -> order-entry WebSocket URL, for the markets whose orders go over a
        WebSocket (``order_entry="ws"`` and the venue has one); the others use REST."""
        if self.order_entry != "ws":
            return {}
        out: dict[str, str] = {}
        for market in self.markets:
            if self.name == "binance" and market != "spot":
                continue  # USD-M order entry stays on REST
            explicit = self.urls.get(market)
            if explicit is not None and explicit.trade is not None:
                out[market] = explicit.trade
            elif self.name == "binance":
                out[market] = self.private_url_for(market)  # the WebSocket API
            else:
                private = self.private_url_for(market).rstrip("/")
                if not private.endswith("/v5/private"):
                    raise ConfigError(f"bybit {market}: give the /v5/trade URL (urls.trade)")
                out[market] = private[: -len("private")] + "trade"
        return out


def _env_credentials(prefix: str) -> Credentials | None:
    """``<prefix>_API_KEY`` with ``<prefix>_API_SECRET`` (HMAC) or
    ``<prefix>_PRIVATE_KEY_FILE`` (PEM, RSA or Ed25519; ``<prefix>_PRIVATE_KEY_PASSPHRASE``)."""
    api_key = os.environ.get(f"{prefix}_API_KEY")
    if not api_key:
        return None
    secret = os.environ.get(f"{prefix}_API_SECRET")
    pem_file = os.environ.get(f"{prefix}_PRIVATE_KEY_FILE")
    if (secret is None) == (pem_file is None):
        raise ConfigError(
            f"{prefix}_API_KEY needs exactly one of {prefix}_API_SECRET or "
            f"{prefix}_PRIVATE_KEY_FILE"
        )
    if secret is not None:
        return Credentials(api_key, secret=secret)
    assert pem_file is not None
    passphrase = os.environ.get(f"{prefix}_PRIVATE_KEY_PASSPHRASE")
    return Credentials(
        api_key,
        private_key_pem=Path(pem_file).read_bytes(),
        passphrase=passphrase.encode() if passphrase else None,
    )


def _credentials(keys: Credentials | tuple[str, str] | None) -> Credentials | None:
    if keys is None or isinstance(keys, Credentials):
        return keys
    api_key, secret = keys
    return Credentials(api_key, secret=secret)


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
        """``EXCONN_EXCHANGES``: a comma list of ``binance`` and ``bybit`` (default ``binance``);
        ``EXCONN_ENV``: their environment (default live); ``EXCONN_<NAME>_MARKETS``: a comma
        list of ``spot`` and ``linear`` (default ``spot``); ``EXCONN_LOG_LEVEL``. Each
        exchange's account (for account topics and orders) from ``EXCONN_<NAME>_API_KEY`` with
        ``EXCONN_<NAME>_API_SECRET`` (HMAC) or ``EXCONN_<NAME>_PRIVATE_KEY_FILE`` (PEM, RSA or
        Ed25519; ``EXCONN_<NAME>_PRIVATE_KEY_PASSPHRASE``), NAME being BINANCE or BYBIT."""
        env = os.environ.get("EXCONN_ENV", "live")
        names = [n.strip() for n in os.environ.get("EXCONN_EXCHANGES", "binance").split(",")]
        exchanges = []
        for name in dict.fromkeys(n for n in names if n):
            prefix = f"EXCONN_{name.upper()}"
            markets = os.environ.get(f"{prefix}_MARKETS", "spot").split(",")
            exchanges.append(
                ExchangeConfig(
                    name=name,
                    environment=env,
                    markets=tuple(m.strip() for m in markets if m.strip()),
                    credentials=_env_credentials(prefix),
                )
            )
        if not exchanges:
            raise ConfigError("EXCONN_EXCHANGES names no exchange; known: binance, bybit")
        return cls(exchanges=tuple(exchanges), log_level=os.environ.get("EXCONN_LOG_LEVEL", "INFO"))

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
        binance_keys: Credentials | tuple[str, str] | None = None,
        bybit_keys: Credentials | tuple[str, str] | None = None,
        order_entry: str = "rest",
    ) -> Config:
        """Exchanges against running ``exconn.sim`` simulators. Binance: spot at
        ``rest_url``/``ws_url`` (None: no spot) and USD-M at ``linear`` = (rest_url, ws_url) of
        a ``BinanceUsdmSim``. Bybit: ``bybit`` = (rest_url, ws_url) of a ``BybitSim``, serving
        ``bybit_markets`` on its ``/v5/public/<category>`` streams. ``binance_keys`` /
        ``bybit_keys``: the account for account topics, ``Credentials`` or an HMAC
        (api_key, secret) pair such as a sim's ``api_keys()[0]`` (Binance spot:
        ``(k.hmac_key, k.hmac_secret)`` of ``api_keys(0)``); one Binance key serves both
        Binance markets, so spot and USD-M together need a key both sims know.
        ``order_entry="ws"``: orders over the sims' WebSocket API (Binance spot) and
        ``/v5/trade`` (Bybit)."""
        exchanges: list[ExchangeConfig] = []
        if bybit is not None:
            rest, ws_base = bybit
            exchanges.append(
                ExchangeConfig(
                    name="bybit",
                    environment="sim",
                    markets=bybit_markets,
                    urls={
                        m: VenueUrls(
                            rest=rest,
                            ws=f"{ws_base.rstrip('/')}/v5/public/{m}",
                            private=f"{ws_base.rstrip('/')}/v5/private",
                            trade=f"{ws_base.rstrip('/')}/v5/trade",
                        )
                        for m in bybit_markets
                    },
                    ws=ws or WsSettings(),
                    credentials=_credentials(bybit_keys),
                    order_entry=order_entry,
                )
            )
        urls: dict[str, VenueUrls] = {}
        if rest_url is not None and ws_url is not None:
            urls["spot"] = VenueUrls(
                rest=rest_url, ws=ws_url, private=f"{ws_url.rstrip('/')}/ws-api/v3"
            )
        if linear is not None:
            urls["linear"] = VenueUrls(rest=linear[0], ws=linear[1], private=linear[1])
        if urls or not exchanges:
            exchanges.insert(
                0,
                ExchangeConfig(
                    name="binance",
                    environment="sim",
                    markets=tuple(urls),
                    urls=urls,
                    ws=ws or WsSettings(),
                    credentials=_credentials(binance_keys),
                    order_entry=order_entry,
                ),
            )
        return cls(exchanges=tuple(exchanges), log_level=log_level)


def seal_credentials(config: Config, key: bytes) -> Config:
    """``config`` with every exchange's ``Credentials`` sealed with ``key`` (so that it
    pickles); sealed ones are kept as they are."""
    exchanges = tuple(
        msgspec.structs.replace(ex, credentials=SealedCredentials.seal(ex.credentials, key))
        if isinstance(ex.credentials, Credentials)
        else ex
        for ex in config.exchanges
    )
    return msgspec.structs.replace(config, exchanges=exchanges)
