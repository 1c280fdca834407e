"""Binance REST answers about the account -> exconn's user events (the twin of
``venues/bybit/orders_parse.py``), for the read model and its reconciliation.

Orders are read with the same tables as the user stream (``user_stream``): the stream and REST
must name every status, type and time in force alike, or the read model would see a change
(or a regression) where there is none. Times are the venue's: an order's ``updateTime``, a
trade's ``time``, an account's ``updateTime``.

``symbol_of`` maps a venue symbol (``BTCUSDT``) to exconn's (``BTC/USDT``) and returns None for
one outside the instruments: such rows are skipped (the caller counts them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from exconn.messages import BalanceUpdate, Fill, OrderUpdate, PositionUpdate
from exconn.model.decimal import utc_from_ms
from exconn.model.enums import Exchange, Market, OrderSide, TimeInForce
from exconn.venues.binance.user_stream import (
    _AVG,
    _ORDER_TYPE,
    _POSITION_SIDE,
    _SPOT_ORDER_TYPE,
    _TIME_IN_FORCE,
    _nonzero,
    _order_type,
    _side,
    _status,
)
from exconn.venues.binance.wire import (
    OrderFill,
    PositionRisk,
    SpotAccount,
    SpotMyTrade,
    SpotOrder,
    SpotOrderResult,
    UsdmAccount,
    UsdmBalance,
    UsdmOrder,
    UsdmUserTrade,
)

__all__ = [
    "parse_order_result_fills",
    "parse_rest_balances",
    "parse_rest_fill",
    "parse_rest_fills",
    "parse_rest_order",
    "parse_rest_orders",
    "parse_rest_position",
    "parse_rest_positions",
]

EXCHANGE = Exchange.BINANCE.value
SymbolOf = Callable[[str], str | None]


def _market_of(wire: object, market: Market | str) -> Market:
    market = Market(market)
    spot = isinstance(wire, SpotOrder | SpotOrderResult | SpotMyTrade)
    if spot != (market is Market.SPOT):
        raise ValueError(f"binance: a {type(wire).__name__} is not a {market} answer")
    return market


# {"symbol":"LTCBTC","orderId":1,"orderListId":-1,"clientOrderId":"myOrder1","price":"0.1",
#  "origQty":"1.0","executedQty":"0.0","cummulativeQuoteQty":"0.0","status":"NEW",
#  "timeInForce":"GTC","type":"LIMIT","side":"BUY","stopPrice":"0.0","icebergQty":"0.0",
#  "time":1499827319559,"updateTime":1499827319559,"isWorking":true,...}
def _spot_order(wire: SpotOrder | SpotOrderResult, symbol: str, ts_ms: int) -> OrderUpdate:
    qty = Decimal(wire.origQty)
    filled = Decimal(wire.executedQty)
    quote = Decimal(wire.cummulativeQuoteQty)
    tif = _TIME_IN_FORCE.get(wire.timeInForce)
    post_only = wire.type == "LIMIT_MAKER" or tif is TimeInForce.POST_ONLY
    # A negative cummulativeQuoteQty means "not available" (orders older than 2018): no average.
    avg = _AVG.divide(quote, filled) if filled and quote > 0 else None
    orig_quote = _nonzero(wire.origQuoteOrderQty)
    client_id = getattr(wire, "origClientOrderId", None) or wire.clientOrderId
    return OrderUpdate(
        exchange=EXCHANGE,
        market=Market.SPOT.value,
        symbol=symbol,
        client_order_id=client_id or None,
        exchange_order_id=str(wire.orderId),
        side=_side(wire.side),
        order_type=_order_type(wire.type, _SPOT_ORDER_TYPE),
        time_in_force=TimeInForce.POST_ONLY if post_only else tif,
        status=_status(wire.status, qty, filled),
        price=_nonzero(wire.price),
        qty=qty,
        filled_qty=filled,
        avg_price=avg,
        ts=utc_from_ms(ts_ms),
        post_only=post_only,
        trigger_price=_nonzero(getattr(wire, "stopPrice", None)),
        quote_qty=orig_quote,
        venue_status=wire.status,
        venue_type=wire.type,
    )


# {"orderId":12345678,"symbol":"BTCUSDT","status":"NEW","clientOrderId":"testOrder123",
#  "price":"50000.00","avgPrice":"0.00","origQty":"0.001","executedQty":"0.000",
#  "cumQuote":"0.00","timeInForce":"GTC","type":"LIMIT","reduceOnly":false,
#  "closePosition":false,"side":"BUY","positionSide":"BOTH","stopPrice":"0.00",...,
#  "time":1625474304765,"updateTime":1625474304765}
def _usdm_order(wire: UsdmOrder, symbol: str) -> OrderUpdate:
    qty = Decimal(wire.origQty)
    filled = Decimal(wire.executedQty)
    tif = _TIME_IN_FORCE.get(wire.timeInForce)
    return OrderUpdate(
        exchange=EXCHANGE,
        market=Market.LINEAR.value,
        symbol=symbol,
        client_order_id=wire.clientOrderId or None,
        exchange_order_id=str(wire.orderId),
        side=_side(wire.side),
        order_type=_order_type(wire.type, _ORDER_TYPE),
        time_in_force=tif,
        status=_status(wire.status, qty, filled),
        price=_nonzero(wire.price),
        qty=qty,
        filled_qty=filled,
        avg_price=_nonzero(wire.avgPrice) if filled else None,
        ts=utc_from_ms(wire.updateTime),
        reduce_only=wire.reduceOnly,
        post_only=tif is TimeInForce.POST_ONLY,
        position_side=_POSITION_SIDE.get(wire.positionSide),
        trigger_price=_nonzero(wire.stopPrice),
        venue_status=wire.status,
        venue_type=wire.type,
    )


def parse_rest_order(
    wire: SpotOrder | SpotOrderResult | UsdmOrder, market: Market | str, symbol: str
) -> OrderUpdate:
    """One order as ``GET order`` / ``openOrders`` / ``allOrders`` (spot ``SpotOrder``, USD-M
    ``UsdmOrder``) or a placement/cancel reply with a status (spot ``RESULT``/``FULL``: dated
    by its ``transactTime``; its ``fills`` via ``parse_order_result_fills``) answers it."""
    market = _market_of(wire, market)
    if isinstance(wire, UsdmOrder):
        return _usdm_order(wire, symbol)
    ts_ms = wire.updateTime if isinstance(wire, SpotOrder) else wire.transactTime
    return _spot_order(wire, symbol, ts_ms)


def parse_rest_orders(
    rows: Iterable[SpotOrder | UsdmOrder], market: Market | str, symbol_of: SymbolOf
) -> list[OrderUpdate]:
    out = []
    for row in rows:
        symbol = symbol_of(row.symbol)
        if symbol is not None:
            out.append(parse_rest_order(row, market, symbol))
    return out


# {"symbol":"BNBBTC","id":28457,"orderId":100234,"orderListId":-1,"price":"4.00000100",
#  "qty":"12.00000000","quoteQty":"48.000012","commission":"10.10000000",
#  "commissionAsset":"BNB","time":1499865549590,"isBuyer":true,"isMaker":false,...}
# {"symbol":"ETHUSDT","id":82357626,"orderId":831238666,"side":"SELL","price":"2778.35",
#  "qty":"0.005","realizedPnl":"0","marginAsset":"USDT","quoteQty":"13.89175",
#  "commission":"0.00555670","commissionAsset":"USDT","time":1645930322371,
#  "positionSide":"BOTH","buyer":false,"maker":false}
def parse_rest_fill(wire: SpotMyTrade | UsdmUserTrade, market: Market | str, symbol: str) -> Fill:
    """One of the account's trades (spot ``myTrades``, USD-M ``userTrades``). The rows carry no
    client order id: the read model attaches the fill to its order by exchange id."""
    market = _market_of(wire, market)
    if isinstance(wire, SpotMyTrade):
        side = OrderSide.BUY if wire.isBuyer else OrderSide.SELL
        is_maker = wire.isMaker
    else:
        side = _side(wire.side)
        is_maker = wire.maker
    return Fill(
        exchange=EXCHANGE,
        market=market.value,
        symbol=symbol,
        trade_id=str(wire.id),
        exchange_order_id=str(wire.orderId),
        client_order_id=None,
        side=side,
        price=Decimal(wire.price),
        qty=Decimal(wire.qty),
        fee=Decimal(wire.commission),
        fee_asset=wire.commissionAsset or None,
        is_maker=is_maker,
        ts=utc_from_ms(wire.time),
    )


def parse_rest_fills(
    rows: Iterable[SpotMyTrade | UsdmUserTrade], market: Market | str, symbol_of: SymbolOf
) -> list[Fill]:
    out = []
    for row in rows:
        symbol = symbol_of(row.symbol)
        if symbol is not None:
            out.append(parse_rest_fill(row, market, symbol))
    return out


# "fills":[{"price":"4000.00000000","qty":"1.00000000","commission":"4.00000000",
#           "commissionAsset":"USDT","tradeId":56}, ...]
def parse_order_result_fills(
    wire: SpotOrderResult, symbol: str, fills: Sequence[OrderFill]
) -> list[Fill]:
    """The fills a spot ``FULL`` placement reply lists (``SpotOrderFull.fills``): taker fills
    of the new order, dated by ``transactTime``. A fill without a ``tradeId`` cannot be
    de-duplicated against the stream and is left out (the stream or ``myTrades`` brings it)."""
    client_id = wire.clientOrderId or None
    return [
        Fill(
            exchange=EXCHANGE,
            market=Market.SPOT.value,
            symbol=symbol,
            trade_id=str(f.tradeId),
            exchange_order_id=str(wire.orderId),
            client_order_id=client_id,
            side=_side(wire.side),
            price=Decimal(f.price),
            qty=Decimal(f.qty),
            fee=Decimal(f.commission),
            fee_asset=f.commissionAsset or None,
            is_maker=False,  # fills in the placement reply are the new order's taker fills
            ts=utc_from_ms(wire.transactTime),
        )
        for f in fills
        if f.tradeId is not None
    ]


# Spot GET /api/v3/account: {"updateTime":123456789,"balances":[{"asset":"BTC",
#  "free":"4723846.89208129","locked":"0.00000000"}, ...], ...}
# USD-M GET /fapi/v3/balance: [{"asset":"USDT","balance":"122.12345678",
#  "availableBalance":"122.12345678","updateTime":1617939110373, ...}]
def parse_rest_balances(
    wire: SpotAccount | Sequence[UsdmBalance] | UsdmAccount, now_ms: int | None = None
) -> list[BalanceUpdate]:
    """Balances as the stream reports them, so the two compare: spot ``free``, ``locked``,
    ``total`` (dated by the account's ``updateTime``); USD-M ``total`` = wallet balance (the
    stream's ``wb``; dated by the asset's ``updateTime``). ``now_ms`` dates a row whose time is
    0 (an asset never moved; ``/fapi/v3/account``'s assets may omit it)."""
    if isinstance(wire, SpotAccount):
        ts = utc_from_ms(wire.updateTime or now_ms or 0)
        out = []
        for b in wire.balances:
            free, locked = Decimal(b.free), Decimal(b.locked)
            out.append(
                BalanceUpdate(
                    exchange=EXCHANGE,
                    market=Market.SPOT.value,
                    asset=b.asset,
                    ts=ts,
                    free=free,
                    locked=locked,
                    total=free + locked,
                )
            )
        return out
    if isinstance(wire, UsdmAccount):
        rows = [(a.asset, a.walletBalance, a.updateTime) for a in wire.assets]
    else:
        rows = [(b.asset, b.balance, b.updateTime) for b in wire]
    return [
        BalanceUpdate(
            exchange=EXCHANGE,
            market=Market.LINEAR.value,
            asset=asset,
            ts=utc_from_ms(updated or now_ms or 0),
            total=Decimal(balance),
        )
        for asset, balance, updated in rows
    ]


# {"symbol":"BTCUSDT","positionAmt":"0.001","entryPrice":"50000.0","markPrice":"51000.0",
#  "unRealizedProfit":"1.00000000","liquidationPrice":"45000.0","leverage":"20",
#  "marginType":"cross","positionSide":"BOTH","updateTime":1625474304765,...}
def parse_rest_position(
    wire: PositionRisk, symbol: str, now_ms: int | None = None
) -> PositionUpdate:
    """One ``positionRisk`` row; ``positionAmt`` is signed already. ``updateTime`` 0 (a
    position never opened) is dated ``now_ms`` when given."""
    side = _POSITION_SIDE.get(wire.positionSide)
    if side is None:
        raise ValueError(f"binance: position side {wire.positionSide!r} is not BOTH/LONG/SHORT")
    qty = Decimal(wire.positionAmt)
    return PositionUpdate(
        exchange=EXCHANGE,
        market=Market.LINEAR.value,
        symbol=symbol,
        position_side=side,
        qty=qty,
        ts=utc_from_ms(wire.updateTime or now_ms or 0),
        entry_price=_nonzero(wire.entryPrice) if qty else None,
        unrealized_pnl=Decimal(wire.unRealizedProfit),
        leverage=_nonzero(wire.leverage),
        mark_price=_nonzero(wire.markPrice),
        liquidation_price=_nonzero(wire.liquidationPrice),
        margin_mode=wire.marginType or None,
    )


def parse_rest_positions(
    rows: Iterable[PositionRisk], symbol_of: SymbolOf, now_ms: int | None = None
) -> list[PositionUpdate]:
    out = []
    for row in rows:
        symbol = symbol_of(row.symbol)
        if symbol is not None:
            out.append(parse_rest_position(row, symbol, now_ms))
    return out
