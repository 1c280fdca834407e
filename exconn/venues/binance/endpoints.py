"""Binance REST endpoints as data: method, path, request weight (binance.md §4, §8.2)."""

from __future__ import annotations

from dataclasses import dataclass

from exconn.model.enums import Market


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    weight: int
    signed: bool = False


SPOT = {
    "ping": Endpoint("GET", "/api/v3/ping", 1),
    "time": Endpoint("GET", "/api/v3/time", 1),
    "exchange_info": Endpoint("GET", "/api/v3/exchangeInfo", 20),
    "depth": Endpoint("GET", "/api/v3/depth", 5),  # weight by limit: depth_weight()
}
LINEAR = {
    "ping": Endpoint("GET", "/fapi/v1/ping", 1),
    "time": Endpoint("GET", "/fapi/v1/time", 1),
    "exchange_info": Endpoint("GET", "/fapi/v1/exchangeInfo", 1),
    "depth": Endpoint("GET", "/fapi/v1/depth", 2),
}


def endpoints(market: Market) -> dict[str, Endpoint]:
    return SPOT if market is Market.SPOT else LINEAR


def depth_weight(market: Market, limit: int) -> int:
    if market is Market.SPOT:
        if limit <= 100:
            return 5
        if limit <= 500:
            return 25
        if limit <= 1000:
            return 50
        return 250
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


def depth_params(venue_symbol: str, limit: int) -> dict[str, str]:
    return {"symbol": venue_symbol, "limit": str(limit)}
