"""msgspec Structs of Binance's wire format, named as Binance names them.

Field names are the exchange's one-letter keys; prices and quantities stay strings here (exact,
and 3-4x faster to decode than Decimal). Conversion to exconn's model happens in ``parse``.
Sources: ../shared/reference/binance.md §4-§6 and payloads/binance_spot_*.json.
"""

from __future__ import annotations

from typing import Any

import msgspec

PriceLevel = tuple[str, str]


class DepthUpdate(msgspec.Struct, tag_field="e", tag="depthUpdate"):
    """``<symbol>@depth`` diff: levels changed between update ids U and u (inclusive).
    USD-M adds ``pu`` (the previous event's ``u``) and T."""

    E: int
    s: str
    U: int
    u: int
    b: list[PriceLevel]
    a: list[PriceLevel]
    pu: int | None = None
    T: int | None = None


class TradeEvent(msgspec.Struct, tag_field="e", tag="trade"):
    """``<symbol>@trade``: one trade; ``m`` is true when the buyer was the maker."""

    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


class ServerShutdown(msgspec.Struct, tag_field="e", tag="serverShutdown"):
    E: int


StreamEvent = DepthUpdate | TradeEvent | ServerShutdown


class CombinedEvent(msgspec.Struct):
    """``/stream?streams=...`` wraps every event as ``{"stream": name, "data": event}``."""

    stream: str
    data: StreamEvent


class ControlReply(msgspec.Struct):
    """Reply to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, or a control error."""

    id: int | str | None = None
    result: Any = None
    code: int | None = None
    msg: str | None = None


class DepthSnapshot(msgspec.Struct):
    """``GET /api/v3/depth`` (USD-M adds E and T)."""

    lastUpdateId: int
    bids: list[PriceLevel]
    asks: list[PriceLevel]


class SymbolInfo(msgspec.Struct):
    symbol: str
    status: str
    baseAsset: str
    quoteAsset: str
    filters: list[dict[str, Any]]
    marginAsset: str | None = None  # USD-M only
    contractType: str | None = None  # USD-M only


class ExchangeInfo(msgspec.Struct):
    symbols: list[SymbolInfo]
    serverTime: int | None = None
    rateLimits: list[dict[str, Any]] = msgspec.field(default_factory=list)


class ErrorBody(msgspec.Struct):
    code: int
    msg: str


combined_decoder = msgspec.json.Decoder(CombinedEvent)
control_decoder = msgspec.json.Decoder(ControlReply)
depth_snapshot_decoder = msgspec.json.Decoder(DepthSnapshot)
exchange_info_decoder = msgspec.json.Decoder(ExchangeInfo)
error_decoder = msgspec.json.Decoder(ErrorBody)
