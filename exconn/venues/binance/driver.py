"""Binance's ``VenueDriver`` (``exconn.venues.driver``): spot and USD-M."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exconn.model.enums import Market
from exconn.venues.binance import endpoints, urls
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
    RestRules,
    SnapshotRequest,
    UrlsDriver,
)


class BinanceDriver(UrlsDriver):
    exchange = "binance"
    urls = urls
    handler_class = StreamHandler
    ping_interval_s: float | None = None  # the server pings; the socket layer pongs
    streams_in_url = True  # combined streams: /stream?streams=a/b/c

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
