"""Bybit V5 REST answers about the account -> exconn's user events (the twin of
``venues/binance/orders_parse.py``), for the read model and its reconciliation.

Bybit's REST rows have the stream's item shapes (``wire.Order``, ``Execution``, ``Position``,
``WalletAccount``), so each row goes through the stream's parser (``user_stream``): REST and
stream then name every status and type alike, and the read model sees no false change.
A result names its category once (``result.category``); rows of a category exconn does not
trade (inverse, option) are skipped.

``symbol_of(market, venue_symbol)`` maps to exconn's symbol (None: outside the instruments,
skipped; the caller counts them). ``now_ms`` is the envelope's ``time``: it dates wallet
balances (Bybit gives them no time) and rows without ``updatedTime``.
"""

from __future__ import annotations

from collections.abc import Callable

from exconn.messages import BalanceUpdate, Fill, OrderUpdate, PositionUpdate
from exconn.model.enums import Market
from exconn.venues.bybit.user_stream import (
    parse_execution,
    parse_order,
    parse_position,
    parse_wallet,
)
from exconn.venues.bybit.wire import (
    Execution,
    ExecutionsResult,
    Order,
    OrdersResult,
    Position,
    PositionsResult,
    WalletBalanceResult,
)

__all__ = [
    "market_of_category",
    "parse_rest_balances",
    "parse_rest_fill",
    "parse_rest_fills",
    "parse_rest_order",
    "parse_rest_orders",
    "parse_rest_position",
    "parse_rest_positions",
]

SymbolOf = Callable[[Market, str], str | None]
SettleOf = Callable[[Market, str], str | None]
_CATEGORY = {"spot": Market.SPOT, "linear": Market.LINEAR}


def market_of_category(category: str | None) -> Market | None:
    """exconn's market of a Bybit category; None for one exconn does not trade."""
    return _CATEGORY.get(category or "")


def _market(row_category: str, result_category: str | None, market: Market | None) -> Market | None:
    if market is not None:
        return Market(market)
    return market_of_category(row_category or result_category)


# {"orderId":"fd4300ae-7847-404e-b947-b46980a4d140","orderLinkId":"test-000005",
#  "symbol":"ETHUSDT","price":"1600.00","qty":"0.10","side":"Buy","positionIdx":1,
#  "orderStatus":"New","rejectReason":"EC_NoError","avgPrice":"0","cumExecQty":"0.00",
#  "timeInForce":"GTC","orderType":"Limit","stopOrderType":"UNKNOWN","triggerPrice":"0.00",
#  "createdTime":"1684738540559","updatedTime":"1684738540561",...}
def parse_rest_order(wire: Order, market: Market | str, symbol: str) -> OrderUpdate:
    """One ``/v5/order/realtime`` or ``/v5/order/history`` row."""
    return parse_order(wire, Market(market), symbol)


def parse_rest_orders(
    result: OrdersResult, symbol_of: SymbolOf, market: Market | None = None
) -> list[OrderUpdate]:
    """Every row of an order list whose category and symbol exconn trades. ``market``
    overrides the category (a result that does not name it)."""
    out = []
    for row in result.list:
        m = _market(row.category, result.category, market)
        symbol = None if m is None else symbol_of(m, row.symbol)
        if m is not None and symbol is not None:
            out.append(parse_rest_order(row, m, symbol))
    return out


# {"symbol":"ETHPERP","orderType":"Market","orderLinkId":"","side":"Buy",
#  "orderId":"8c065341-7b52-4ca9-ac2c-37e31ac55c94","execTime":"1672282722429",
#  "feeCurrency":"","isMaker":false,"execFee":"0.071409","execId":"e0cbe81d-...",
#  "execPrice":"1190.15","execQty":"0.1","execType":"Trade","seq":4688002127,...}
def parse_rest_fill(
    wire: Execution, market: Market | str, symbol: str, settle: str | None = None
) -> Fill | None:
    """One ``/v5/execution/list`` row; None for one that moves no quantity (funding).
    ``settle`` names the fee asset of a linear row without ``feeCurrency``."""
    return parse_execution(wire, Market(market), symbol, settle)


def parse_rest_fills(
    result: ExecutionsResult,
    symbol_of: SymbolOf,
    market: Market | None = None,
    settle_of: SettleOf | None = None,
) -> list[Fill]:
    out = []
    for row in result.list:
        m = _market(row.category, result.category, market)
        symbol = None if m is None else symbol_of(m, row.symbol)
        if m is None or symbol is None:
            continue
        settle = settle_of(m, row.symbol) if settle_of is not None else None
        fill = parse_rest_fill(row, m, symbol, settle)
        if fill is not None:
            out.append(fill)
    return out


# {"list":[{"accountType":"UNIFIED","totalEquity":"3.31216591",...,"coin":[{"coin":"BTC",
#  "walletBalance":"0","locked":"0","equity":"0",...}]}]}
def parse_rest_balances(result: WalletBalanceResult, now_ms: int) -> list[BalanceUpdate]:
    """``/v5/account/wallet-balance``: one ``BalanceUpdate`` per coin (market ``unified`` for
    the Unified Trading Account; ``total`` walletBalance, ``locked``), as the stream reports
    them, dated ``now_ms`` (the envelope's ``time``)."""
    out: list[BalanceUpdate] = []
    for account in result.list:
        out += parse_wallet(account, now_ms)
    return out


# {"positionIdx":0,"symbol":"BTCUSDT","side":"Sell","size":"300","avgPrice":"27464.50441675",
#  "leverage":"10","markPrice":"28224.50","liqPrice":"","unrealisedPnl":"-0.00029413",
#  "cumRealisedPnl":"-0.00096902","seq":5723621632,"updatedTime":"1697673600012",...}
def parse_rest_position(
    wire: Position, market: Market | str, symbol: str, now_ms: int
) -> PositionUpdate:
    """One ``/v5/position/list`` row (``avgPrice`` is its entry price); ``size`` signed by
    ``side`` (Sell is short). ``now_ms`` dates a row without ``updatedTime``."""
    return parse_position(wire, Market(market), symbol, now_ms)


def parse_rest_positions(
    result: PositionsResult, symbol_of: SymbolOf, now_ms: int, market: Market | None = None
) -> list[PositionUpdate]:
    out = []
    for row in result.list:
        m = _market(row.category, result.category, market)
        symbol = None if m is None else symbol_of(m, row.symbol)
        if m is not None and symbol is not None:
            out.append(parse_rest_position(row, m, symbol, now_ms))
    return out
