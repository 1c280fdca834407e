"""What stands between a request and the venue: injected request faults, request weights.

Shared by REST and the WebSocket API; an `Refusal` says what to answer instead.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exconn.sim import binance_spot_reply as R
from exconn.sim import errors as E
from exconn.sim.core import VENUE, SpotCore, wall_ms
from exconn.sim.fault_registry import FaultKind
from exconn.sim.weights import depth_weight, parse_depth_limit

# Documented spot weights (binance.md §4). Order placement and cancels cost their weight
# only when they fail (since 2026-04-02), handled by the caller.
WEIGHTS: dict[str, int] = {
    "GET /api/v3/ping": 1,
    "GET /api/v3/time": 1,
    "GET /api/v3/exchangeInfo": 20,
    "GET /api/v3/trades": 25,
    "GET /api/v3/aggTrades": 4,
    "GET /api/v3/klines": 2,
    "GET /api/v3/uiKlines": 2,
    "GET /api/v3/account": 20,
    "POST /api/v3/order": 1,
    "POST /api/v3/order/test": 1,
    "DELETE /api/v3/order": 1,
    "DELETE /api/v3/openOrders": 1,
    "POST /api/v3/order/cancelReplace": 1,
    "PUT /api/v3/order/amend/keepPriority": 4,
    "GET /api/v3/order": 4,
    "GET /api/v3/allOrders": 20,
    "GET /api/v3/myTrades": 20,
    "GET /api/v3/rateLimit/order": 40,
    "ping": 1,
    "time": 1,
    "session.logon": 2,
    "session.status": 2,
    "session.logout": 2,
    "order.place": 1,
    "order.test": 1,
    "order.cancel": 1,
    "order.status": 4,
    "openOrders.status": 6,
    "account.status": 20,
    "userDataStream.subscribe": 2,
    "userDataStream.subscribe.signature": 2,
    "userDataStream.unsubscribe": 2,
    "session.subscriptions": 2,
}
FREE_ON_SUCCESS = {
    "POST /api/v3/order",
    "DELETE /api/v3/order",
    "DELETE /api/v3/openOrders",
    "POST /api/v3/order/cancelReplace",
    "order.place",
    "order.cancel",
}
PLACES_ORDER = {"POST /api/v3/order", "POST /api/v3/order/cancelReplace", "order.place"}


def weight(endpoint: str, params: Mapping[str, str]) -> int:
    symbols = params.get("symbols")
    one = bool(params.get("symbol"))
    if endpoint == "GET /api/v3/depth":
        return depth_weight(parse_depth_limit(params.get("limit")) or 100)
    if endpoint == "GET /api/v3/ticker/24hr":
        if one:
            return 2
        count = symbols.count(",") + 1 if symbols else 10_000
        return 2 if count <= 20 else 40 if count <= 100 else 80
    if endpoint in ("GET /api/v3/ticker/bookTicker", "GET /api/v3/ticker/price"):
        return 2 if one else 4
    if endpoint == "GET /api/v3/openOrders":
        return 6 if one else 80
    if endpoint == "GET /api/v3/myTrades" and params.get("orderId"):
        return 5
    if endpoint == "POST /api/v3/order/test" and params.get("computeCommissionRates") == "true":
        return 20
    return WEIGHTS.get(endpoint, 1)


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    retry_after_ms: int | None = None


def request_fault(core: SpotCore, endpoint: str, symbol: str | None) -> Refusal | None:
    """429 / 418 / 5xx faults that answer instead of the venue (nothing is executed)."""
    now = wall_ms()
    where = {"venue": VENUE, "endpoint": endpoint, "symbol": symbol}
    fault = core.faults.take(FaultKind.HTTP_418, now, **where)
    if fault is not None:
        retry_s = int(fault.params.get("retry_after", 120))
        until = core.clock() + retry_s * 1000
        msg = E.BINANCE_IP_BANNED % until
        return Refusal(418, {"code": -1003, "msg": msg}, {"Retry-After": str(retry_s)}, until)
    fault = core.faults.take(FaultKind.HTTP_429, now, **where)
    if fault is not None:
        retry_s = int(fault.params.get("retry_after", 1))
        msg = E.BINANCE_TOO_MANY_REQUESTS_WEIGHT % (6000, "1 MINUTE")
        return Refusal(
            429,
            {"code": -1003, "msg": msg},
            {"Retry-After": str(retry_s)},
            core.clock() + retry_s * 1000,
        )
    fault = core.faults.take(FaultKind.HTTP_5XX, now, **where)
    if fault is not None:
        status = int(fault.params.get("status", 503))
        code, msg = (-1008, R.OVERLOADED) if status == 503 else (-1001, R.INTERNAL)
        return Refusal(status, {"code": code, "msg": msg})
    return None


def after_accept_fault(
    core: SpotCore, endpoint: str, symbol: str | None
) -> tuple[str, float] | None:
    """("error" | "timeout", delay s) when the executed request must not be answered normally."""
    now = wall_ms()
    where = {"venue": VENUE, "endpoint": endpoint, "symbol": symbol}
    fault = core.faults.take(FaultKind.ERROR_AFTER_ACCEPT, now, **where)
    if fault is not None:
        return "error", 0.0
    fault = core.faults.take(FaultKind.TIMEOUT_AFTER_ACCEPT, now, **where)
    if fault is not None:
        return "timeout", float(fault.params.get("delay_s", 10.0))
    return None


def auth_rejected(core: SpotCore, endpoint: str) -> bool:
    return (
        core.faults.take(FaultKind.REJECT_AUTH, wall_ms(), venue=VENUE, endpoint=endpoint)
        is not None
    )
