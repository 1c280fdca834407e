"""Bybit's ``VenueDriver`` (``exconn.venues.driver``): V5 spot and linear."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from exconn.model.enums import Market
from exconn.model.instruments import Instrument
from exconn.venues.bybit import endpoints, urls, user_stream
from exconn.venues.bybit.parse import parse_instruments
from exconn.venues.bybit.streams import StreamHandler
from exconn.venues.bybit.wire import linear_instruments_decoder, spot_instruments_decoder
from exconn.venues.driver import (
    SUBSCRIBE,
    UNSUBSCRIBE,
    Catalog,
    Getter,
    ListenKeySteps,
    RestRules,
    SnapshotRequest,
    UrlsDriver,
)

# instruments-info pages (linear lists 500+ symbols); a bound, not an expectation
MAX_INSTRUMENT_PAGES = 50
INSTRUMENTS_PAGE_SIZE = 1000


class BybitDriver(UrlsDriver):
    exchange = "bybit"
    urls = urls
    handler_class = StreamHandler
    ping_interval_s: float | None = urls.PING_INTERVAL_S
    streams_in_url = False  # a socket starts empty: every stream is an {"op":"subscribe"}
    user_ping_interval_s: float | None = user_stream.PING_INTERVAL_S

    def private_url(self, market: Market, environment: str) -> str:
        return urls.private_url(environment)  # one for every category

    def user_streams(self, markets: Sequence[str]) -> list[tuple[str, ...]]:
        return [tuple(markets)] if markets else []  # /v5/private carries every category

    def user_stream_handler(self, markets: Sequence[str], instruments: Iterable[Instrument]) -> Any:
        return user_stream.UserStreamHandler(instruments)

    def user_connect_url(self, handler: Any, private_url: str) -> str:
        return private_url

    def listen_key_steps(self, market: Market) -> ListenKeySteps | None:
        return None  # the socket authenticates itself

    def rest_rules(self, market: Market) -> RestRules:
        # Errors travel in the body's retCode: the venue maps them itself.
        return RestRules(endpoints.rest_venue())

    def load_catalog(self, market: Market, get: Getter) -> Catalog:
        decoder = (
            linear_instruments_decoder if market is Market.LINEAR else spot_instruments_decoder
        )
        items: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_INSTRUMENT_PAGES):
            req = endpoints.instruments_info(
                market.value, limit=INSTRUMENTS_PAGE_SIZE, cursor=cursor
            )
            page = get(req.path, dict(req.params), decoder).result
            items.extend(page.list)
            cursor = page.nextPageCursor
            if not cursor:
                break
        else:
            raise ValueError(
                f"bybit {market}: instruments-info has more than {MAX_INSTRUMENT_PAGES} pages"
            )
        return Catalog(instruments=parse_instruments(items, market))

    def connect_url(self, ws_base: str, streams: Sequence[str]) -> str:
        return ws_base

    def control_frames(
        self, handler: Any, action: str, streams: Sequence[str], first_id: int
    ) -> list[str]:
        return list(handler.control_frames(action.lower(), streams, first_id))

    def ping_frame(self) -> str | None:
        return urls.ping_frame()

    def streams_to_resubscribe(self, handler: Any) -> list[str]:
        return list(handler.streams_to_resubscribe())

    def resubscribe_actions(self, streams: list[str]) -> list[tuple[str, list[str]]]:
        # Bybit refuses a subscribe for a topic the socket already holds: drop it first; the
        # new subscription starts with a snapshot.
        return [(UNSUBSCRIBE, streams), (SUBSCRIBE, streams)]

    def snapshot_request(
        self, market: Market, venue_symbol: str, depth_limit: int
    ) -> SnapshotRequest | None:
        return None  # snapshots arrive in the stream


DRIVER = BybitDriver()
