"""Binance error codes and HTTP statuses -> exconn's typed errors.

Sources: ../shared/reference/binance.md §2.1 (HTTP codes), §3 (429/418, Retry-After) and the
error catalog in ../shared/corpus/binance/spot/rest/docs__errors_catalog.json.
"""

from __future__ import annotations

from exconn import errors

# Codes whose meaning decides what the caller must do next.
CODE_ERRORS: dict[int, type[errors.ExconnError]] = {
    -1003: errors.RateLimited,  # too many requests (418 variant handled by status)
    -1006: errors.OutcomeUnknown,  # unexpected response: execution status unknown
    -1007: errors.OutcomeUnknown,  # timeout: execution status unknown
    -1015: errors.RateLimited,  # too many new orders
    -1021: errors.ClockSkew,  # timestamp outside recvWindow
    -1022: errors.AuthError,  # invalid signature
    -1121: errors.InvalidSymbol,
    -2010: errors.InvalidOrder,  # new order rejected (insufficient balance has its own type)
    -2011: errors.OrderNotFound,  # cancel rejected: unknown order
    -2013: errors.OrderNotFound,
    -2014: errors.AuthError,  # bad API key format
    -2015: errors.AuthError,  # invalid key, IP or permissions
    -1013: errors.InvalidOrder,  # filter failure
    -1100: errors.InvalidOrder,
    -1102: errors.InvalidOrder,
    -1111: errors.InvalidOrder,
    # USD-M order refusals (binance.md §11): a 4xx that says the order was not taken. Unlisted,
    # they would read as "outcome unknown" and send a placement to be resolved by query.
    -2019: errors.InsufficientFunds,  # margin is insufficient
    -4061: errors.InvalidOrder,  # positionSide does not match the position mode
    -4164: errors.InvalidOrder,  # notional below the minimum
    -5022: errors.InvalidOrder,  # post-only (GTX) would take: not recorded
}

INSUFFICIENT_BALANCE_TEXT = "insufficient balance"


def error_for(
    status: int,
    code: int | None,
    message: str | None,
    *,
    endpoint: str,
    retry_after: float | None = None,
) -> errors.ExconnError:
    """The exconn error for a failed Binance REST response."""
    common: dict[str, object] = {
        "exchange": "binance",
        "code": code,
        "venue_message": message,
        "endpoint": endpoint,
    }
    if status == 418:
        return errors.Banned(retry_after=retry_after, **common)  # type: ignore[arg-type]
    if status == 429:
        return errors.RateLimited(retry_after=retry_after, **common)  # type: ignore[arg-type]
    if status >= 500:
        # Binance: a 5XX means the execution status is unknown, not that the request failed.
        return errors.ExchangeDown(**common)  # type: ignore[arg-type]
    if code == -2010 and message and INSUFFICIENT_BALANCE_TEXT in message.lower():
        return errors.InsufficientFunds(**common)  # type: ignore[arg-type]
    cls = CODE_ERRORS.get(code) if code is not None else None
    if cls is None:
        cls = errors.ExchangeError
    return cls(**common)  # type: ignore[arg-type]
