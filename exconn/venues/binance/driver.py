"""Binance's ``VenueDriver`` (``exconn.venues.driver``): spot and USD-M."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from exconn.model.enums import Market
from exconn.model.instruments import Instrument
from exconn.venues.binance import endpoints, urls, user_stream
from exconn.venues.binance.errors import error_for
from exconn.venues.binance.parse import parse_exchange_info
from exconn.venues.binance.streams import StreamHandler
from exconn.venues.binance.wire import (
    depth_snapshot_decoder,
    error_decoder,
    exchange_info_decoder,
)
from exconn.venues.driver import (
    SUBSCRIBE,
    Catalog,
    Getter,
    ListenKeySteps,
    RestRules,
    SnapshotRequest,
    UrlsDriver,
)

# Private streams per environment (binance.md §1, §9): spot's WebSocket API; USD-M's stream
# host, to which the handler adds ``/private/ws?listenKey=...``.
PRIVATE_URLS: dict[Market, dict[str, str]] = {
    Market.SPOT: {
        "live": "wss://ws-api.binance.com:443/ws-api/v3",
        "testnet": "wss://ws-api.testnet.binance.vision/ws-api/v3",
        "demo": "wss://demo-ws-api.binance.com/ws-api/v3",
    },
    Market.LINEAR: {
        "live": "wss://fstream.binance.com",
        "testnet": "wss://fstream.binancefuture.com",
        "demo": "wss://demo-fstream.binance.com",
    },
}
LISTEN_KEY_STEPS = ListenKeySteps(
    create=user_stream.create_listen_key,
    keepalive=user_stream.keepalive_listen_key,
    close=user_stream.close_listen_key,
    keepalive_interval_s=float(user_stream.LISTEN_KEY_KEEPALIVE_S),
)


class BinanceDriver(UrlsDriver):
    exchange = "binance"
    urls = urls
    handler_class = StreamHandler
    ping_interval_s: float | None = None  # the server pings; the socket layer pongs
    streams_in_url = True  # combined streams: /stream?streams=a/b/c
    user_ping_interval_s: float | None = user_stream.PING_INTERVAL_S

    def private_url(self, market: Market, environment: str) -> str:
        try:
            return PRIVATE_URLS[Market(market)][environment]
        except KeyError:
            raise ValueError(
                f"binance {market}: no built-in private stream URL for environment "
                f"{environment!r}; set it in the market's VenueUrls.private"
            ) from None

    def user_streams(self, markets: Sequence[str]) -> list[tuple[str, ...]]:
        return [(m,) for m in markets]  # spot: WS API; USD-M: its own listenKey stream

    def user_stream_handler(self, markets: Sequence[str], instruments: Iterable[Instrument]) -> Any:
        (market,) = markets
        return user_stream.UserStreamHandler(Market(market), instruments)

    def user_connect_url(self, handler: Any, private_url: str) -> str:
        if handler.market is Market.LINEAR:
            return str(handler.stream_url(private_url))
        return private_url

    def listen_key_steps(self, market: Market) -> ListenKeySteps | None:
        return LISTEN_KEY_STEPS if Market(market) is Market.LINEAR else None

    def rest_rules(self, market: Market) -> RestRules:
        return RestRules(endpoints.rest_venue(market), error_for, error_decoder)

    def load_catalog(self, market: Market, get: Getter) -> Catalog:
        info = get(endpoints.endpoints(market)["exchange_info"].path, {}, exchange_info_decoder)
        return Catalog(
            instruments=parse_exchange_info(info, market),
            rate_limits=tuple(endpoints.rate_limits(info.rateLimits)),
        )

    def connect_url(self, ws_base: str, streams: Sequence[str]) -> str:
        return urls.combined_url(ws_base, list(streams))

    def control_frames(
        self, handler: Any, action: str, streams: Sequence[str], first_id: int
    ) -> list[str]:
        return list(handler.control_frames(action.upper(), streams, first_id))

    def ping_frame(self) -> str | None:
        return None

    def streams_to_resubscribe(self, handler: Any) -> list[str]:
        return []  # a gap is repaired with a REST snapshot, not by subscribing again

    def resubscribe_actions(self, streams: list[str]) -> list[tuple[str, list[str]]]:
        # Binance accepts a SUBSCRIBE for a stream it already sends (the liveness watchdog's
        # nudge for a silent stream).
        return [(SUBSCRIBE, streams)]

    def snapshot_request(
        self, market: Market, venue_symbol: str, depth_limit: int
    ) -> SnapshotRequest | None:
        return SnapshotRequest(
            endpoints.endpoints(market)["depth"].path,
            endpoints.depth_params(venue_symbol, depth_limit),
            depth_snapshot_decoder,
        )


DRIVER = BinanceDriver()
