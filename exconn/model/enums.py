"""exconn's vocabulary. Values are lower-case strings: they appear in topics and on messages, and
a StrEnum compares equal to its value, so ``Market.SPOT == "spot"``."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BookSide", "Exchange", "Market", "OrderSide", "OrderStatus", "OrderType", "TimeInForce"]


class Exchange(StrEnum):
    BINANCE = "binance"
    BYBIT = "bybit"


class Market(StrEnum):
    SPOT = "spot"
    # USD-margined perpetuals: Binance USD-M futures, Bybit "linear".
    LINEAR = "linear"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    POST_ONLY = "post_only"


class OrderStatus(StrEnum):
    """Lifecycle of an order; the legal moves are in ``exconn.model.orders``."""

    PENDING_NEW = "pending_new"  # intent recorded, not yet acknowledged by the exchange
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"  # cancel sent, not yet confirmed
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    # Submitted but the outcome is not known (timeout, 5xx, socket lost): resolve by query.
    UNKNOWN = "unknown"


class BookSide(StrEnum):
    BID = "bid"
    ASK = "ask"
