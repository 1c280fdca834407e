"""msgspec Structs of Binance's wire format, named as Binance names them.

Field names are the exchange's one-letter keys; prices and quantities stay strings here (exact,
and 3-4x faster to decode than Decimal). Conversion to exconn's model happens in ``parse``.
Sources: ../shared/reference/binance.md §4-§6 and payloads/binance_spot_*.json.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

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
    E: int | None = None  # USD-M only
    T: int | None = None  # USD-M only


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


# ============================================================================================
# Market streams beyond depth and trade (binance.md §6 spot, §8.1 USD-M).


class AggTradeEvent(msgspec.Struct, tag_field="e", tag="aggTrade"):
    """``<symbol>@aggTrade``: fills of one taker order at one price, trade ids f..l."""

    E: int
    s: str
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's key
    T: int
    m: bool


class KlineBar(msgspec.Struct):
    """The ``k`` object of a kline event."""

    t: int
    T: int
    s: str
    i: str
    o: str
    c: str
    h: str
    l: str  # noqa: E741 - Binance's key
    v: str
    n: int
    x: bool
    q: str
    f: int = -1
    L: int = -1
    V: str = "0"
    Q: str = "0"


class KlineEvent(msgspec.Struct, tag_field="e", tag="kline"):
    """``<symbol>@kline_<interval>``; ``k.x`` is true once the bar is closed."""

    E: int
    s: str
    k: KlineBar


class Ticker24hrEvent(msgspec.Struct, tag_field="e", tag="24hrTicker"):
    """``<symbol>@ticker``: rolling 24 h statistics. USD-M carries no best bid/ask (b, B, a, A)
    and no previous close (x)."""

    E: int
    s: str
    p: str
    P: str
    w: str
    c: str
    Q: str
    o: str
    h: str
    l: str  # noqa: E741 - Binance's key
    v: str
    q: str
    O: int  # noqa: E741 - Binance's key
    C: int
    F: int
    L: int
    n: int
    x: str | None = None
    b: str | None = None
    B: str | None = None
    a: str | None = None
    A: str | None = None


class MiniTicker24hrEvent(msgspec.Struct, tag_field="e", tag="24hrMiniTicker"):
    """``<symbol>@miniTicker``: close/open/high/low and volumes only."""

    E: int
    s: str
    c: str
    o: str
    h: str
    l: str  # noqa: E741 - Binance's key
    v: str
    q: str


class MarkPriceUpdate(msgspec.Struct, tag_field="e", tag="markPriceUpdate"):
    """USD-M ``<symbol>@markPrice[@1s]``: mark, index, funding rate, next funding time."""

    E: int
    s: str
    p: str
    i: str
    r: str
    T: int
    P: str | None = None  # estimated settle price


class ForceOrderDetail(msgspec.Struct):
    s: str
    S: str
    o: str
    f: str
    q: str
    p: str
    ap: str
    X: str
    l: str  # noqa: E741 - Binance's key
    z: str
    T: int


class ForceOrderEvent(msgspec.Struct, tag_field="e", tag="forceOrder"):
    """USD-M ``<symbol>@forceOrder``: a liquidation order."""

    E: int
    o: ForceOrderDetail


class BookTicker(msgspec.Struct):
    """``<symbol>@bookTicker``. Spot sends no ``e``/``E``/``T``; USD-M adds
    ``e="bookTicker"``, E and T. Untagged so one type serves both: pick it by stream name."""

    u: int
    s: str
    b: str
    B: str
    a: str
    A: str
    E: int | None = None
    T: int | None = None


class PartialDepth(msgspec.Struct):
    """Spot ``<symbol>@depth<5|10|20>``: the top of the book, with no symbol and no time (the
    combined stream's name says which symbol). USD-M's is a ``PartialDepthUpdate``."""

    lastUpdateId: int
    bids: list[PriceLevel]
    asks: list[PriceLevel]


class PartialDepthUpdate(msgspec.Struct, tag_field="e", tag="depthUpdate"):
    """USD-M ``<symbol>@depth<5|10|20>``: the top levels, complete, though tagged and shaped
    like a diff (``DepthUpdate``). A type of its own, picked by stream name, so that a frame of
    this stream can never be applied to a book as a diff."""

    E: int
    s: str
    U: int
    u: int
    b: list[PriceLevel]
    a: list[PriceLevel]
    pu: int | None = None
    T: int | None = None


# Every market stream event that carries an ``e`` tag, spot and USD-M.
MarketStreamEvent = (
    DepthUpdate
    | TradeEvent
    | AggTradeEvent
    | KlineEvent
    | Ticker24hrEvent
    | MiniTicker24hrEvent
    | MarkPriceUpdate
    | ForceOrderEvent
    | ServerShutdown
)

T_co = TypeVar("T_co")


class Combined(msgspec.Struct, Generic[T_co]):
    """``{"stream": name, "data": event}`` for any event type; ``Combined[BookTicker]`` decodes
    a combined bookTicker frame in one pass."""

    stream: str
    data: T_co


class CombinedRaw(msgspec.Struct):
    """A combined frame whose event is left undecoded until the stream name picks its type."""

    stream: str
    data: msgspec.Raw


# ============================================================================================
# User data (binance.md §9). Spot events arrive on the WS API wrapped as
# ``{"subscriptionId": n, "event": {...}}``; USD-M events arrive bare on the listenKey stream.


class AccountBalance(msgspec.Struct):
    a: str
    f: str
    l: str  # noqa: E741 - Binance's key


class OutboundAccountPosition(msgspec.Struct, tag_field="e", tag="outboundAccountPosition"):
    """Spot: balances that may have changed; ``u`` is the account's last update time."""

    E: int
    u: int
    B: list[AccountBalance]


class BalanceUpdate(msgspec.Struct, tag_field="e", tag="balanceUpdate"):
    """Spot: deposit, withdrawal or transfer; ``d`` is the signed delta."""

    E: int
    a: str
    d: str
    T: int


class ExecutionReport(msgspec.Struct, tag_field="e", tag="executionReport"):
    """Spot order update. ``x`` execution type, ``X`` order status, ``l``/``L`` last fill,
    ``z`` cumulative qty, ``n``/``N`` commission of this fill, ``t`` trade id (-1 if none)."""

    E: int
    s: str
    c: str
    S: str
    o: str
    f: str
    q: str
    p: str
    x: str
    X: str
    i: int
    l: str  # noqa: E741 - Binance's key
    z: str
    L: str
    T: int
    t: int
    P: str = "0"
    F: str = "0"
    g: int = -1
    C: str = ""  # original client order id, set on cancels
    r: str = "NONE"
    n: str = "0"
    N: str | None = None
    I: int | None = None  # noqa: E741 - Binance's key
    w: bool | None = None
    m: bool = False
    O: int | None = None  # noqa: E741 - Binance's key
    Z: str = "0"
    Y: str = "0"
    Q: str = "0"
    W: int | None = None
    V: str | None = None


class ListStatusOrder(msgspec.Struct):
    s: str
    i: int
    c: str


class ListStatus(msgspec.Struct, tag_field="e", tag="listStatus"):
    """Spot order list (OCO/OTO) status, sent besides the orders' executionReports."""

    E: int
    s: str
    g: int
    c: str
    l: str  # noqa: E741 - Binance's key
    L: str
    r: str
    C: str
    T: int
    O: list[ListStatusOrder]  # noqa: E741 - Binance's key


class EventStreamTerminated(msgspec.Struct, tag_field="e", tag="eventStreamTerminated"):
    """Spot: the user-data subscription ended (unsubscribe, logout, expiry): resubscribe."""

    E: int


class ExternalLockUpdate(msgspec.Struct, tag_field="e", tag="externalLockUpdate"):
    E: int
    a: str
    d: str
    T: int


class ListenKeyExpired(msgspec.Struct, tag_field="e", tag="listenKeyExpired"):
    """USD-M (and legacy spot): the listenKey expired; create a new one and reconnect."""

    E: int
    listenKey: str | None = None


SpotUserEvent = (
    ExecutionReport
    | OutboundAccountPosition
    | BalanceUpdate
    | ListStatus
    | EventStreamTerminated
    | ExternalLockUpdate
    | ListenKeyExpired
)


class UserDataEvent(msgspec.Struct):
    """Spot WS API user-data wrapper."""

    subscriptionId: int
    event: SpotUserEvent


class OrderTradeUpdateDetail(msgspec.Struct):
    """The ``o`` object of USD-M ORDER_TRADE_UPDATE (binance.md §9.3)."""

    s: str
    c: str
    S: str
    o: str
    f: str
    q: str
    p: str
    ap: str
    x: str
    X: str
    i: int
    l: str  # noqa: E741 - Binance's key
    z: str
    L: str
    T: int
    t: int
    sp: str | None = None  # null in liquidation/ADL/settlement updates
    N: str | None = None
    n: str | None = None
    b: str = "0"
    a: str = "0"
    m: bool = False
    R: bool = False
    wt: str | None = None
    ot: str | None = None
    ps: str = "BOTH"
    cp: bool = False
    AP: str | None = None
    cr: str | None = None
    pP: bool = False
    rp: str = "0"
    V: str | None = None
    pm: str | None = None
    gtd: int = 0
    er: str | None = None


class OrderTradeUpdate(msgspec.Struct, tag_field="e", tag="ORDER_TRADE_UPDATE"):
    E: int
    T: int
    o: OrderTradeUpdateDetail


class AccountUpdateBalance(msgspec.Struct):
    a: str
    wb: str
    cw: str
    bc: str = "0"


class AccountUpdatePosition(msgspec.Struct):
    s: str
    pa: str
    ep: str
    up: str
    mt: str
    ps: str
    cr: str = "0"
    bep: str | None = None
    iw: str = "0"


class AccountUpdateData(msgspec.Struct):
    m: str
    B: list[AccountUpdateBalance] = msgspec.field(default_factory=list)
    P: list[AccountUpdatePosition] = msgspec.field(default_factory=list)


class AccountUpdate(msgspec.Struct, tag_field="e", tag="ACCOUNT_UPDATE"):
    """USD-M balance and position changes; ``a.m`` is the reason (ORDER, FUNDING_FEE, ...)."""

    E: int
    T: int
    a: AccountUpdateData


class TradeLite(msgspec.Struct, tag_field="e", tag="TRADE_LITE"):
    """USD-M low-latency fill notice (no commission or status: ORDER_TRADE_UPDATE follows)."""

    E: int
    T: int
    s: str
    c: str
    S: str
    q: str
    p: str
    i: int
    l: str  # noqa: E741 - Binance's key
    L: str
    t: int
    m: bool


class AlgoUpdateDetail(msgspec.Struct):
    caid: str
    aid: int
    at: str
    o: str
    s: str
    S: str
    X: str
    q: str
    ps: str = "BOTH"
    f: str | None = None
    ai: str = ""  # order id once triggered, "" before
    ap: str = "0"
    aq: str = "0"
    act: str = "0"
    tp: str = "0"
    p: str = "0"
    V: str | None = None
    wt: str | None = None
    pm: str | None = None
    cp: bool = False
    pP: bool = False
    R: bool = False
    tt: int = 0
    gtd: int = 0
    rm: str | None = None


class AlgoUpdate(msgspec.Struct, tag_field="e", tag="ALGO_UPDATE"):
    """USD-M conditional (algo) order update."""

    E: int
    T: int
    o: AlgoUpdateDetail


UsdmUserEvent = OrderTradeUpdate | AccountUpdate | TradeLite | AlgoUpdate | ListenKeyExpired


# ============================================================================================
# REST responses (binance.md §4, §8.2). Only the fields exconn reads are required.


class RestTrade(msgspec.Struct):
    """``GET /api/v3/trades``, ``/historicalTrades`` (and ``/fapi/v1/...``)."""

    id: int
    price: str
    qty: str
    time: int
    isBuyerMaker: bool
    quoteQty: str | None = None
    isBestMatch: bool | None = None  # spot only


class RestAggTrade(msgspec.Struct):
    """``GET /api/v3/aggTrades``: the same keys as the aggTrade stream event."""

    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's key
    T: int
    m: bool
    M: bool | None = None


# ``GET /api/v3/klines`` row: open time, o, h, l, c, volume, close time, quote volume,
# trade count, taker buy base volume, taker buy quote volume, ignore.
KlineRow = tuple[int, str, str, str, str, str, int, str, int, str, str, str]


class RestTicker24hr(msgspec.Struct):
    """``GET /api/v3/ticker/24hr`` (FULL) and ``/fapi/v1/ticker/24hr`` (no bid/ask)."""

    symbol: str
    priceChange: str
    priceChangePercent: str
    weightedAvgPrice: str
    lastPrice: str
    lastQty: str
    openPrice: str
    highPrice: str
    lowPrice: str
    volume: str
    quoteVolume: str
    openTime: int
    closeTime: int
    firstId: int
    lastId: int
    count: int
    prevClosePrice: str | None = None
    bidPrice: str | None = None
    bidQty: str | None = None
    askPrice: str | None = None
    askQty: str | None = None


class RestBookTicker(msgspec.Struct):
    """``GET /api/v3/ticker/bookTicker`` (USD-M adds ``time`` and ``lastUpdateId``)."""

    symbol: str
    bidPrice: str
    bidQty: str
    askPrice: str
    askQty: str
    time: int | None = None
    lastUpdateId: int | None = None


class TickerPrice(msgspec.Struct):
    symbol: str
    price: str
    time: int | None = None


class AvgPrice(msgspec.Struct):
    mins: int
    price: str
    closeTime: int | None = None


class ServerTime(msgspec.Struct):
    serverTime: int


class Pong(msgspec.Struct):
    """``GET /api/v3/ping``: ``{}``."""


class ListenKey(msgspec.Struct):
    listenKey: str


class RateLimit(msgspec.Struct):
    """One limit as ``exchangeInfo`` lists it, or its usage (``count``) in a WS API reply."""

    rateLimitType: str
    interval: str
    intervalNum: int
    limit: int
    count: int | None = None


class CommissionRates(msgspec.Struct):
    maker: str
    taker: str
    buyer: str = "0"
    seller: str = "0"


class SpotBalance(msgspec.Struct):
    asset: str
    free: str
    locked: str


class SpotAccount(msgspec.Struct):
    """``GET /api/v3/account``."""

    balances: list[SpotBalance]
    canTrade: bool
    updateTime: int
    accountType: str
    makerCommission: int | None = None
    takerCommission: int | None = None
    commissionRates: CommissionRates | None = None
    permissions: list[str] = msgspec.field(default_factory=list)
    uid: int | None = None


class OrderFill(msgspec.Struct):
    price: str
    qty: str
    commission: str
    commissionAsset: str
    tradeId: int | None = None


class SpotOrderAck(msgspec.Struct):
    """``POST /api/v3/order`` with ``newOrderRespType=ACK``."""

    symbol: str
    orderId: int
    clientOrderId: str
    transactTime: int
    orderListId: int = -1


class SpotOrderResult(SpotOrderAck):
    """``newOrderRespType=RESULT`` (the default for LIMIT orders); also a cancel's reply."""

    price: str = "0"
    origQty: str = "0"
    executedQty: str = "0"
    cummulativeQuoteQty: str = "0"
    status: str = "NEW"
    timeInForce: str = "GTC"
    type: str = "LIMIT"
    side: str = "BUY"
    origQuoteOrderQty: str | None = None
    workingTime: int | None = None
    selfTradePreventionMode: str | None = None
    origClientOrderId: str | None = None  # cancels only


class SpotOrderFull(SpotOrderResult):
    """``newOrderRespType=FULL`` (the default for MARKET orders): the fills as well."""

    fills: list[OrderFill] = msgspec.field(default_factory=list)


class SpotOrderListMember(msgspec.Struct):
    symbol: str
    orderId: int
    clientOrderId: str


class SpotOrderListResult(msgspec.Struct):
    """An order list (OCO/OTO) as a cancel or place reply: its orders and their reports."""

    orderListId: int
    contingencyType: str
    listStatusType: str
    listOrderStatus: str
    listClientOrderId: str
    transactionTime: int
    symbol: str
    orders: list[SpotOrderListMember]
    orderReports: list[SpotOrderResult] = msgspec.field(default_factory=list)


class SpotOrder(msgspec.Struct):
    """``GET /api/v3/order`` and one element of ``GET /api/v3/openOrders`` / ``allOrders``."""

    symbol: str
    orderId: int
    clientOrderId: str
    price: str
    origQty: str
    executedQty: str
    cummulativeQuoteQty: str
    status: str
    timeInForce: str
    type: str
    side: str
    time: int
    updateTime: int
    orderListId: int = -1
    stopPrice: str = "0"
    icebergQty: str = "0"
    isWorking: bool = True
    origQuoteOrderQty: str | None = None
    workingTime: int | None = None
    selfTradePreventionMode: str | None = None


class SpotMyTrade(msgspec.Struct):
    """``GET /api/v3/myTrades``."""

    symbol: str
    id: int
    orderId: int
    price: str
    qty: str
    quoteQty: str
    commission: str
    commissionAsset: str
    time: int
    isBuyer: bool
    isMaker: bool
    orderListId: int = -1
    isBestMatch: bool | None = None


class UsdmOrder(msgspec.Struct):
    """``POST/GET/DELETE /fapi/v1/order`` and one element of ``openOrders``/``allOrders``."""

    orderId: int
    symbol: str
    status: str
    clientOrderId: str
    price: str
    avgPrice: str
    origQty: str
    executedQty: str
    cumQuote: str
    timeInForce: str
    type: str
    side: str
    updateTime: int
    reduceOnly: bool = False
    closePosition: bool = False
    positionSide: str = "BOTH"
    stopPrice: str = "0"
    workingType: str | None = None
    priceProtect: bool = False
    origType: str | None = None
    priceMatch: str | None = None
    selfTradePreventionMode: str | None = None
    goodTillDate: int | None = None
    time: int | None = None
    activatePrice: str | None = None
    priceRate: str | None = None


class UsdmUserTrade(msgspec.Struct):
    """``GET /fapi/v1/userTrades``."""

    symbol: str
    id: int
    orderId: int
    side: str
    price: str
    qty: str
    realizedPnl: str
    quoteQty: str
    commission: str
    commissionAsset: str
    time: int
    buyer: bool
    maker: bool
    positionSide: str = "BOTH"
    marginAsset: str | None = None


class PositionRisk(msgspec.Struct):
    """``GET /fapi/v2|v3/positionRisk``; ``positionAmt`` is signed (negative = short)."""

    symbol: str
    positionAmt: str
    entryPrice: str
    markPrice: str
    unRealizedProfit: str
    liquidationPrice: str
    positionSide: str
    updateTime: int = 0
    leverage: str | None = None
    marginType: str | None = None
    isolatedMargin: str | None = None
    notional: str | None = None
    breakEvenPrice: str | None = None
    maxNotionalValue: str | None = None
    isAutoAddMargin: str | None = None
    isolatedWallet: str | None = None


class PremiumIndex(msgspec.Struct):
    """``GET /fapi/v1/premiumIndex``: the REST twin of the markPrice stream."""

    symbol: str
    markPrice: str
    indexPrice: str
    lastFundingRate: str
    nextFundingTime: int
    time: int
    estimatedSettlePrice: str | None = None
    interestRate: str | None = None


class FundingRate(msgspec.Struct):
    """``GET /fapi/v1/fundingRate``: one past funding event."""

    symbol: str
    fundingRate: str
    fundingTime: int
    markPrice: str | None = None


class UsdmBalance(msgspec.Struct):
    """``GET /fapi/v2|v3/balance``."""

    asset: str
    balance: str
    availableBalance: str
    updateTime: int
    crossWalletBalance: str | None = None
    crossUnPnl: str | None = None
    maxWithdrawAmount: str | None = None
    accountAlias: str | None = None
    marginAvailable: bool | None = None


class UsdmAccountAsset(msgspec.Struct):
    asset: str
    walletBalance: str
    availableBalance: str
    unrealizedProfit: str = "0"
    marginBalance: str | None = None
    updateTime: int = 0


class UsdmAccountPosition(msgspec.Struct):
    symbol: str
    positionAmt: str
    positionSide: str = "BOTH"
    entryPrice: str | None = None
    unrealizedProfit: str = "0"
    updateTime: int = 0


class UsdmAccount(msgspec.Struct):
    """``GET /fapi/v2|v3/account``."""

    totalWalletBalance: str
    availableBalance: str
    assets: list[UsdmAccountAsset]
    positions: list[UsdmAccountPosition] = msgspec.field(default_factory=list)
    canTrade: bool | None = None
    updateTime: int | None = None
    totalUnrealizedProfit: str | None = None
    totalMarginBalance: str | None = None
    multiAssetsMargin: bool | None = None


class PositionSideDual(msgspec.Struct):
    """``GET /fapi/v1/positionSide/dual``: true = hedge mode."""

    dualSidePosition: bool


class OpenInterest(msgspec.Struct):
    symbol: str
    openInterest: str
    time: int


# ============================================================================================
# WebSocket requests and the WS API (binance.md §6, §9.1).


class WsRequest(msgspec.Struct):
    """An outbound control or WS API request: SUBSCRIBE, order.place, session.logon, ..."""

    method: str
    id: int | str | None = None
    params: Any = None


class WsApiResponse(msgspec.Struct):
    """A WS API reply. ``result`` stays raw: its type depends on the request's method, so the
    caller decodes it with the decoder of the request it sent (e.g. ``SpotOrderFull``)."""

    status: int
    id: int | str | None = None
    # Raw cannot sit in a union with None: an absent result is an empty Raw (len 0).
    result: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    error: ErrorBody | None = None
    rateLimits: list[RateLimit] = msgspec.field(default_factory=list)


class SessionStatus(msgspec.Struct):
    """``session.logon`` / ``session.status`` result."""

    serverTime: int
    connectedSince: int
    apiKey: str | None = None
    authorizedSince: int | None = None
    returnRateLimits: bool | None = None
    userDataStream: bool | None = None


class SubscriptionResult(msgspec.Struct):
    """``userDataStream.subscribe[.signature]`` result."""

    subscriptionId: int


# ============================================================================================
# Decoders (a Decoder is reusable and faster than msgspec.json.decode(type=...) per call).

combined_decoder = msgspec.json.Decoder(CombinedEvent)
control_decoder = msgspec.json.Decoder(ControlReply)
depth_snapshot_decoder = msgspec.json.Decoder(DepthSnapshot)
exchange_info_decoder = msgspec.json.Decoder(ExchangeInfo)
error_decoder = msgspec.json.Decoder(ErrorBody)

market_event_decoder = msgspec.json.Decoder(MarketStreamEvent)
combined_market_decoder = msgspec.json.Decoder(Combined[MarketStreamEvent])
book_ticker_decoder = msgspec.json.Decoder(BookTicker)
combined_book_ticker_decoder = msgspec.json.Decoder(Combined[BookTicker])
partial_depth_decoder = msgspec.json.Decoder(PartialDepth)
combined_partial_depth_decoder = msgspec.json.Decoder(Combined[PartialDepth])
combined_partial_depth_update_decoder = msgspec.json.Decoder(Combined[PartialDepthUpdate])
combined_raw_decoder = msgspec.json.Decoder(CombinedRaw)

spot_user_event_decoder = msgspec.json.Decoder(SpotUserEvent)
user_data_event_decoder = msgspec.json.Decoder(UserDataEvent)
usdm_user_event_decoder = msgspec.json.Decoder(UsdmUserEvent)

rest_trades_decoder = msgspec.json.Decoder(list[RestTrade])
rest_agg_trades_decoder = msgspec.json.Decoder(list[RestAggTrade])
klines_decoder = msgspec.json.Decoder(list[KlineRow])
ticker_24hr_decoder = msgspec.json.Decoder(RestTicker24hr)
book_ticker_rest_decoder = msgspec.json.Decoder(RestBookTicker)
spot_account_decoder = msgspec.json.Decoder(SpotAccount)
spot_order_ack_decoder = msgspec.json.Decoder(SpotOrderAck)
spot_order_result_decoder = msgspec.json.Decoder(SpotOrderResult)
spot_order_full_decoder = msgspec.json.Decoder(SpotOrderFull)
spot_order_decoder = msgspec.json.Decoder(SpotOrder)
spot_open_orders_decoder = msgspec.json.Decoder(list[SpotOrder])
spot_my_trades_decoder = msgspec.json.Decoder(list[SpotMyTrade])
usdm_order_decoder = msgspec.json.Decoder(UsdmOrder)
usdm_open_orders_decoder = msgspec.json.Decoder(list[UsdmOrder])
usdm_user_trades_decoder = msgspec.json.Decoder(list[UsdmUserTrade])
position_risk_decoder = msgspec.json.Decoder(list[PositionRisk])
premium_index_decoder = msgspec.json.Decoder(PremiumIndex)
ws_api_response_decoder = msgspec.json.Decoder(WsApiResponse)


_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_order_list_result_decoder = msgspec.json.Decoder(SpotOrderListResult)


def decode_cancel_open_orders(raw: bytes) -> list[SpotOrderResult | SpotOrderListResult]:
    """``DELETE /api/v3/openOrders`` mixes single orders and order lists in one array; two
    untagged Struct types cannot share a msgspec union, so each element picks its own type."""
    out: list[SpotOrderResult | SpotOrderListResult] = []
    for item in _raw_list_decoder.decode(raw):
        if b'"contingencyType"' in bytes(item):
            out.append(_order_list_result_decoder.decode(item))
        else:
            out.append(spot_order_result_decoder.decode(item))
    return out


# Event families that carry no ``e`` tag of their own (or share a diff's tag): the stream
# name says what a frame is.
BOOK_TICKER = "bookTicker"
PARTIAL_DEPTH = "partialDepth"
TAGGED = "tagged"


def stream_kind(stream: str) -> str:
    """The event family of a stream name, for the events that carry no ``e`` tag:
    ``"bookTicker"``, ``"partialDepth"`` (``<s>@depth5``, ``@depth20@100ms``) or ``"tagged"``
    for everything a ``MarketStreamEvent`` covers."""
    _, _, rest = stream.partition("@")
    if rest.startswith("bookTicker") or stream == "!bookTicker":  # USD-M all-symbol stream
        return BOOK_TICKER
    if rest.startswith("depth") and rest[5:6].isdigit():
        return PARTIAL_DEPTH
    return TAGGED


_STREAM_PREFIX = b'{"stream":"'
_PREFIX_LEN = len(_STREAM_PREFIX)


def frame_kind(raw: bytes) -> str:
    """``stream_kind`` of a combined frame. Binance writes compact JSON with ``stream`` first:
    the name is read straight from the bytes, without building a str (this runs once per
    frame while such streams are open); a frame laid out otherwise takes a decoding pass.
    Raises msgspec.DecodeError on a frame that is not a combined event."""
    if raw.startswith(_STREAM_PREFIX):
        at = raw.find(b"@", _PREFIX_LEN, raw.find(b'"', _PREFIX_LEN)) + 1
        if raw.startswith(b"bookTicker", at) or raw.startswith(b'!bookTicker"', _PREFIX_LEN):
            return BOOK_TICKER
        if raw.startswith(b"depth", at) and raw[at + 5 : at + 6].isdigit():
            return PARTIAL_DEPTH
        return TAGGED
    return stream_kind(combined_raw_decoder.decode(raw).stream)


def decode_combined(raw: bytes) -> tuple[str, Any]:
    """``(stream, event)`` of any combined market frame, in one typed decode.

    Spot bookTicker and spot partial depth carry no ``e`` field and USD-M partial depth shares
    the diff's tag, so the stream name picks the type (``frame_kind``). Raises
    msgspec.DecodeError (or ValidationError) on anything else."""
    kind = frame_kind(raw)
    frame: Any
    if kind == BOOK_TICKER:
        frame = combined_book_ticker_decoder.decode(raw)
    elif kind == PARTIAL_DEPTH:
        # USD-M partial depth is tagged depthUpdate; spot's is a bare PartialDepth.
        frame = (
            combined_partial_depth_update_decoder.decode(raw)
            if b'"e":"depthUpdate"' in raw
            else combined_partial_depth_decoder.decode(raw)
        )
    else:
        frame = combined_market_decoder.decode(raw)
    return frame.stream, frame.data
