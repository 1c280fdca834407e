"""Bybit V5 retCodes and HTTP statuses -> exconn's typed errors.

Sources: ../shared/reference/bybit.md §2 (HTTP codes), §3 (403 IP limit, 10006), §11 (retCodes
and handling) and the catalog in ../shared/corpus/bybit/rest/docs__v5_error_codes.json.
Bybit answers most failures with HTTP 200 and a non-zero ``retCode`` in the envelope; the
transport passes those here as ``status`` 200.
"""

from __future__ import annotations

from typing import Any

from exconn import errors

EXCHANGE = "bybit"

# 403 "access too frequent" (or a US IP): the ban lifts after 10 minutes (bybit.md §3).
IP_BAN_S = 600.0

# "Nothing to change": setting an option to the value it has. Success for an idempotent call.
NOT_MODIFIED: frozenset[int] = frozenset({110025, 110026, 110043})

# The order may exist: resolve it by orderLinkId, never re-send under a new one.
UNKNOWN_OUTCOME: frozenset[int] = frozenset(
    {
        10000,  # server timeout: status unknown, query /v5/order/realtime by orderLinkId
        10014,  # duplicate request: one like it was already received; reconcile
        10016,  # server error / restarting: reconcile before retrying
    }
)

CLOCK_SKEW: frozenset[int] = frozenset({10002})  # outside [server - recvWindow, server + 1000)
RATE_LIMIT: frozenset[int] = frozenset({10006})  # per-UID endpoint limit ("Too many visits!")

# Codes whose meaning decides what the caller must do next (bybit.md §11), with the next step
# where the error type's own hint is too general.
CODE_ERRORS: dict[int, tuple[type[errors.ExconnError], str | None]] = {
    10000: (errors.OutcomeUnknown, None),
    10001: (errors.InvalidOrder, "fix the request parameters; do not retry unchanged"),
    10002: (errors.ClockSkew, None),
    10003: (
        errors.AuthError,
        "the API key is invalid or belongs to another environment (mainnet, testnet, demo)",
    ),
    10004: (errors.AuthError, "signature rejected: check what is signed (query order, body)"),
    10005: (errors.AuthError, "permission denied: give the API key the permission needed"),
    10006: (errors.RateLimited, None),
    10007: (errors.AuthError, None),  # user authentication failed
    10008: (errors.AuthError, "the account is banned; check the account mode"),
    10009: (errors.AuthError, "the service is restricted in this region"),
    10010: (errors.AuthError, "this IP is not bound to the API key"),
    10014: (errors.OutcomeUnknown, None),
    10016: (errors.ExchangeDown, None),
    10017: (errors.ExchangeError, "route not found: check the path and category"),
    10018: (errors.RateLimited, None),  # deprecated IP limit (now HTTP 403)
    10024: (errors.AuthError, "compliance rules refuse this account the operation"),
    10027: (errors.AuthError, "trading is banned for this account"),
    10029: (errors.AuthError, "the symbol is not on the API key's whitelist"),
    110001: (errors.OrderNotFound, None),
    110003: (errors.InvalidOrder, "the price is outside the allowed range; reprice"),
    110004: (errors.InsufficientFunds, None),
    110007: (errors.InsufficientFunds, None),
    110008: (errors.OrderNotFound, "the order is already filled or cancelled; reconcile"),
    110009: (errors.InvalidOrder, "too many stop orders"),
    110010: (errors.OrderNotFound, "the order is already cancelled; reconcile"),
    110012: (errors.InsufficientFunds, None),
    110044: (errors.InsufficientFunds, None),  # available margin insufficient
    110045: (errors.InsufficientFunds, None),  # wallet balance insufficient
    # Text since 2025-11-13: "orderQty will be truncated to zero" (earlier: reduce-only rule).
    110017: (
        errors.InvalidOrder,
        "the quantity would be truncated to zero: raise it to at least one qty step (or check "
        "reduce-only against the position)",
    ),
    110020: (errors.InvalidOrder, "more than 500 active orders; cancel some first"),
    110024: (errors.InvalidOrder, "close the position before switching the mode"),
    110028: (errors.InvalidOrder, "cancel the open orders before switching the mode"),
    170121: (errors.InvalidSymbol, None),
    170130: (errors.InvalidOrder, None),
    170131: (errors.InsufficientFunds, None),
    170213: (errors.OrderNotFound, None),  # spot: order does not exist
    170132: (errors.InvalidOrder, "the price is too high"),
    170133: (errors.InvalidOrder, "the price is below the minimum"),
    170134: (errors.InvalidOrder, "too many decimals in the price: round to tickSize"),
    170136: (errors.InvalidOrder, "the quantity is below the minimum"),
    170137: (errors.InvalidOrder, "too many decimals in the quantity: round to basePrecision"),
    170140: (errors.InvalidOrder, "the order value is below minOrderAmt"),
    170141: (errors.InvalidOrder, "duplicate orderLinkId: use a new one for a new order"),
    170148: (errors.InvalidOrder, "too many decimals in the amount: round to quotePrecision"),
    170193: (errors.InvalidOrder, "the buy price is above the limit"),
    170194: (errors.InvalidOrder, "the sell price is below the limit"),
}

# Codes not listed above whose text says funds are short ("Insufficient available balance to
# add additional margin"); "insufficient size of remaining position" is not about funds.
INSUFFICIENT_TEXT = "insufficient"
FUNDS_TEXT = ("balance", "margin")


def error_for(
    status: int,
    code: int | None,
    message: str | None,
    *,
    endpoint: str,
    retry_after: float | None = None,
) -> errors.ExconnError:
    """The exconn error for a failed Bybit REST answer: an HTTP error status, or a non-zero
    ``retCode`` in a 200 body (``status`` 200)."""
    common: dict[str, Any] = {
        "exchange": EXCHANGE,
        "code": code,
        "venue_message": message,
        "endpoint": endpoint,
    }
    if status == 403:
        seconds = IP_BAN_S if retry_after is None else retry_after
        return errors.Banned(
            f"HTTP 403: IP rate limit (600 requests per 5 s) or a refused region; nothing is "
            f"sent to this host for {seconds:g} s",
            retry_after=seconds,
            **common,
        )
    if status == 429:
        return errors.RateLimited(
            "HTTP 429: system-level protection; back off, then retry",
            retry_after=retry_after,
            **common,
        )
    if status == 401 and code not in CODE_ERRORS:
        return errors.AuthError(
            "HTTP 401: authentication headers missing or the key is wrong", **common
        )
    if status >= 500 and code not in UNKNOWN_OUTCOME:
        return errors.ExchangeDown(**common)
    found = CODE_ERRORS.get(code) if code is not None else None
    if found is None:
        text = (message or "").lower()
        if INSUFFICIENT_TEXT in text and any(word in text for word in FUNDS_TEXT):
            return errors.InsufficientFunds(**common)
        if status == 404:
            return errors.ExchangeError("HTTP 404: check the path and category", **common)
        return errors.ExchangeError(**common)
    cls, step = found
    if cls is errors.RateLimited:
        wait = "" if retry_after is None else f" in {retry_after:g} s"
        return errors.RateLimited(
            f"this endpoint's per-UID rate limit is spent; retry after its reset{wait}",
            retry_after=retry_after,
            **common,
        )
    if cls is errors.InvalidOrder and code == 10001 and message and "symbol" in message.lower():
        return errors.InvalidSymbol("check the symbol name and category", **common)
    return cls(step, **common)
