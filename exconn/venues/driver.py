"""The driver interface: everything the actors need from a venue, in one place.

The actors are venue-neutral: a supervisor or a connection actor asks ``driver_for(exchange)``
and never imports a venue package itself. Each venue folder has a ``driver.py`` exposing a
``DRIVER`` that satisfies ``VenueDriver``; ``tests/unit/test_venue_drivers.py`` checks that
both folders carry the same files and that both drivers expose the same interface.

Pure: no thespian, httpx or websocket imports. REST calls go through a ``get`` callable that the
caller supplies (``RestClient.get`` in the actors, a fake in unit tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from exconn.model.enums import Market
from exconn.model.instruments import Instrument
from exconn.transport.rest import RestClient

_RAW_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(msgspec.Raw)

# (path, params, decoder) -> decoded body; raises exconn.errors.ExconnError
Getter = Callable[[str, dict[str, str], msgspec.json.Decoder[Any]], Any]


@dataclass(frozen=True, slots=True)
class RestRules:
    """What a ``RestClient`` for one market of the venue is built with."""

    venue: Any  # the venue's RestVenue (exconn.transport.rest.RestVenue protocol)
    error_for: Any | None = None  # None: the venue's own mapping
    error_decoder: msgspec.json.Decoder[Any] | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    """A market's instruments and the request limits the venue announced with them."""

    instruments: list[Instrument]
    # Binance exchangeInfo ``rateLimits`` rows (kind, interval, num, limit); () when the venue
    # announces none (Bybit: its limits are fixed in its endpoints table and its headers).
    rate_limits: tuple[tuple[str, str, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ListenKeySteps:
    """How a private stream that needs a REST key first gets and keeps it (Binance USD-M).
    Each builder takes ``Credentials`` and returns a request made as
    ``rest.request(r.method, r.path, r.params, decoder, api_key_headers=r.headers)``; the
    create reply's body goes to the handler's ``on_listen_key``."""

    create: Callable[[Any], Any]
    keepalive: Callable[[Any], Any]
    close: Callable[[Any], Any]
    keepalive_interval_s: float
    decoder: msgspec.json.Decoder[Any] = field(default_factory=lambda: _RAW_DECODER)


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    path: str
    params: dict[str, str]
    decoder: msgspec.json.Decoder[Any]


class VenueDriver(Protocol):
    exchange: str
    # Application-level keep-alive the venue asks for (Bybit ``{"op":"ping"}`` every 20 s);
    # None where the venue pings and the socket layer answers (Binance).
    ping_interval_s: float | None
    # True when streams are named in the URL at connect time (Binance combined streams); False
    # when a socket starts empty and every stream is subscribed by a control frame (Bybit).
    streams_in_url: bool

    def default_urls(self, market: Market, environment: str) -> tuple[str, str]: ...

    def rest_rules(self, market: Market) -> RestRules: ...

    def load_catalog(self, market: Market, get: Getter) -> Catalog: ...

    def stream_handler(self, market: Market, instruments: Iterable[Instrument]) -> Any: ...

    def stream_for(self, kind: str, venue_symbol: str, market: Market) -> str: ...

    def route_for(self, market: Market, kind: str) -> str: ...

    def routed_base(self, ws_base: str, route: str) -> str: ...

    def max_streams(self, market: Market) -> int: ...

    def expected_cadence(self, stream: str) -> float | None: ...

    def connect_url(self, ws_base: str, streams: Sequence[str]) -> str: ...

    def control_frames(
        self, handler: Any, action: str, streams: Sequence[str], first_id: int
    ) -> list[str]: ...

    def ping_frame(self) -> str | None: ...

    def streams_to_resubscribe(self, handler: Any) -> list[str]: ...

    def resubscribe_actions(self, streams: list[str]) -> list[tuple[str, list[str]]]: ...

    def snapshot_request(
        self, market: Market, venue_symbol: str, depth_limit: int
    ) -> SnapshotRequest | None: ...

    # -- private (user data) stream --------------------------------------------------------
    # The private stream's keep-alive frame interval (Bybit 20 s); None where the server pings.
    user_ping_interval_s: float | None

    def private_url(self, market: Market, environment: str) -> str: ...

    def user_streams(self, markets: Sequence[str]) -> list[tuple[str, ...]]:
        """The configured markets grouped per private connection (Binance: one per market;
        Bybit: one for all, ``/v5/private`` carries every category)."""
        ...

    def user_stream_handler(self, markets: Sequence[str], instruments: Iterable[Instrument]) -> Any:
        """A ``UserStreamHandler`` for one group of ``user_streams``."""
        ...

    def user_connect_url(self, handler: Any, private_url: str) -> str:
        """The URL to open (USD-M: the handler's listenKey URL; elsewhere ``private_url``)."""
        ...

    def listen_key_steps(self, market: Market) -> ListenKeySteps | None: ...


class UrlsDriver:
    """What every driver answers from its venue's ``urls`` module and ``StreamHandler`` class
    (the same names in each venue folder); a venue's driver adds the rest."""

    urls: Any
    handler_class: Any

    def default_urls(self, market: Market, environment: str) -> tuple[str, str]:
        return tuple(self.urls.default_urls(market, environment))  # type: ignore[return-value]

    def stream_handler(self, market: Market, instruments: Iterable[Instrument]) -> Any:
        return self.handler_class(market, instruments)

    def stream_for(self, kind: str, venue_symbol: str, market: Market) -> str:
        return str(self.urls.stream_for(kind, venue_symbol, market))

    def route_for(self, market: Market, kind: str) -> str:
        return str(self.urls.route_for(market, kind))

    def routed_base(self, ws_base: str, route: str) -> str:
        return str(self.urls.routed_base(ws_base, route))

    def max_streams(self, market: Market) -> int:
        return int(self.urls.max_streams(market))

    def expected_cadence(self, stream: str) -> float | None:
        cadence = self.urls.expected_cadence(stream)
        return None if cadence is None else float(cadence)


SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"


def venue_rest_client(exchange: str, market: Market | str, url: str, **options: Any) -> RestClient:
    """A ``RestClient`` for one market of ``exchange`` with its driver's rules (error mapping,
    limit headers); ``options`` go to ``RestClient`` (``signer``, ``budget_dir``, ``timeout``)."""
    rules = driver_for(exchange).rest_rules(Market(market))
    return RestClient(
        url,
        exchange=exchange,
        error_for=rules.error_for,
        error_decoder=rules.error_decoder,
        venue=rules.venue,
        **options,
    )


def driver_for(exchange: str) -> VenueDriver:
    """The driver of ``exchange`` (``binance`` or ``bybit``); ValueError for any other."""
    if exchange == "binance":
        from exconn.venues.binance.driver import DRIVER as binance

        return binance
    if exchange == "bybit":
        from exconn.venues.bybit.driver import DRIVER as bybit

        return bybit
    raise ValueError(f"no driver for exchange {exchange!r}; known: binance, bybit")
