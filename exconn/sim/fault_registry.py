"""Faults switched on by tests (Python API) or by anyone (HTTP control endpoint).

A fault has a kind, an optional target (venue, connection, symbol, endpoint), and a lifetime:
a number of firings, a deadline, or both (whichever ends first). Venue handlers ask the registry
at the point where the fault would act: ``take`` consumes one firing (a 429 answer, a dropped
socket), ``active`` only looks (a stall, a clock skew, which last as long as the fault does).
Pure: time comes from the caller.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    DROP = "drop"  # close a WebSocket abruptly (no close frame)
    STALL = "stall"  # keep a WebSocket open but send nothing on it
    SKIP_SEQUENCE = "skip_sequence"  # the next depth event of a symbol is not sent
    SKIP_AGG_TRADE = "skip_agg_trade"  # the next aggTrade of a symbol is not sent (REST has it)
    MALFORMED = "malformed"  # send a garbage frame before the next real one
    SERVER_SHUTDOWN = "server_shutdown"  # send the venue's shutdown notice, then close
    CLOSE_1008 = "close_1008"  # close a WebSocket with 1008 (policy violation)
    HTTP_429 = "http_429"  # answer REST with 429 and Retry-After (params: retry_after)
    HTTP_418 = "http_418"  # answer REST with 418 IP ban and Retry-After
    HTTP_5XX = "http_5xx"  # answer REST with 5xx without executing (params: status)
    ERROR_AFTER_ACCEPT = "error_after_accept"  # execute the order, answer 5xx (Binance -1006)
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"  # execute the order, never answer in time
    DROP_AFTER_ACCEPT = "drop_after_accept"  # execute the order, close the HTTP socket unanswered
    # Execute the order, write its private-stream events, only then answer REST.
    STREAM_BEFORE_ACK = "stream_before_ack"
    DUPLICATE_FILL = "duplicate_fill"  # the next fill on a private stream is sent twice
    CLOCK_SKEW = "clock_skew"  # server clock offset (params: skew_ms, may be negative)
    EXPIRE_SESSION = "expire_session"  # listenKey / WS API session / private WS auth expires
    REJECT_AUTH = "reject_auth"  # authentication fails as for a wrong key


@dataclass(frozen=True)
class Target:
    venue: str | None = None  # "binance_spot", "binance_usdm", "bybit"; None: any
    connection: int | None = None  # a WebSocket connection id; None: any
    symbol: str | None = None  # venue symbol, e.g. "BTCUSDT"; None: any
    endpoint: str | None = None  # "POST /api/v3/order"; None: any

    def covers(
        self,
        venue: str | None,
        connection: int | None,
        symbol: str | None,
        endpoint: str | None,
    ) -> bool:
        return (
            _covers(self.venue, venue)
            and _covers(self.connection, connection)
            and _covers(self.symbol, symbol)
            and _covers(self.endpoint, endpoint)
        )


def _covers(wanted: object, actual: object) -> bool:
    return wanted is None or wanted == actual


@dataclass
class Fault:
    kind: FaultKind
    target: Target = field(default_factory=Target)
    count: int | None = 1  # firings left; None: unlimited until `until_ms`
    until_ms: int | None = None  # deadline; None: until the count is used up
    params: dict[str, Any] = field(default_factory=dict)
    id: int = 0
    fired: int = 0

    def live(self, now_ms: int) -> bool:
        if self.until_ms is not None and now_ms >= self.until_ms:
            return False
        return self.count is None or self.count > 0

    def to_json(self) -> dict[str, Any]:
        t = self.target
        return {
            "id": self.id,
            "kind": self.kind.value,
            "venue": t.venue,
            "connection": t.connection,
            "symbol": t.symbol,
            "endpoint": t.endpoint,
            "count": self.count,
            "until_ms": self.until_ms,
            "params": dict(self.params),
            "fired": self.fired,
        }


class FaultRegistry:
    def __init__(self) -> None:
        self._faults: dict[int, Fault] = {}
        self._ids = itertools.count(1)

    def add(
        self,
        kind: FaultKind | str,
        *,
        venue: str | None = None,
        connection: int | None = None,
        symbol: str | None = None,
        endpoint: str | None = None,
        count: int | None = 1,
        duration_ms: int | None = None,
        now_ms: int = 0,
        **params: Any,
    ) -> int:
        """Register a fault; returns its id. With ``duration_ms`` and no ``count`` it lasts
        for the duration; with neither it fires once."""
        if count is None and duration_ms is None:
            raise ValueError("a fault needs a count, a duration, or both")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1")
        fid = next(self._ids)
        self._faults[fid] = Fault(
            kind=FaultKind(kind),
            target=Target(venue, connection, symbol, endpoint),
            count=count,
            until_ms=None if duration_ms is None else now_ms + duration_ms,
            params=params,
            id=fid,
        )
        return fid

    def add_json(self, body: dict[str, Any], now_ms: int) -> int:
        """The HTTP control endpoint's body: ``{"kind": "http_429", "endpoint": "...",
        "count": 3, "duration_ms": 5000, "params": {"retry_after": 2}}``."""
        known = {"kind", "venue", "connection", "symbol", "endpoint", "count", "duration_ms"}
        unknown = set(body) - known - {"params"}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        if "kind" not in body:
            raise ValueError("a fault needs a kind")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError("params must be an object")
        args = {k: body[k] for k in known - {"kind"} if k in body}
        if "count" not in body and "duration_ms" in body:
            args["count"] = None
        return self.add(body["kind"], now_ms=now_ms, **args, **params)

    def remove(self, fault_id: int) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        self._faults.clear()

    def active(
        self,
        kind: FaultKind,
        now_ms: int,
        *,
        venue: str | None = None,
        connection: int | None = None,
        symbol: str | None = None,
        endpoint: str | None = None,
    ) -> Fault | None:
        """The first live fault of ``kind`` covering the situation, without consuming it."""
        self._expire(now_ms)
        for fault in self._faults.values():
            if fault.kind is kind and fault.target.covers(venue, connection, symbol, endpoint):
                return fault
        return None

    def take(
        self,
        kind: FaultKind,
        now_ms: int,
        *,
        venue: str | None = None,
        connection: int | None = None,
        symbol: str | None = None,
        endpoint: str | None = None,
    ) -> Fault | None:
        """Like ``active`` but consumes one firing (the fault is gone when its count is)."""
        fault = self.active(
            kind, now_ms, venue=venue, connection=connection, symbol=symbol, endpoint=endpoint
        )
        if fault is None:
            return None
        fault.fired += 1
        if fault.count is not None:
            fault.count -= 1
            if fault.count == 0:
                del self._faults[fault.id]
        return fault

    def list(self, now_ms: int) -> list[dict[str, Any]]:
        self._expire(now_ms)
        return [f.to_json() for f in self._faults.values()]

    def _expire(self, now_ms: int) -> None:
        for fid in [fid for fid, f in self._faults.items() if not f.live(now_ms)]:
            del self._faults[fid]
