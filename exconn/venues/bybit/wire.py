"""msgspec Structs of Bybit V5's wire format, named as Bybit names them.

Prices, quantities and most REST times are strings on the wire and stay strings here (exact, and
3-4x faster to decode than Decimal); WebSocket ``ts``/``cts``/``T`` and kline bounds are
numbers (bybit.md §13). Conversion to exconn's model happens in ``parse``.

Only the fields exconn reads are required; the rest carry defaults, because Bybit adds and
deprecates fields often (bybit.md §13) and an absent optional field must not cost a message.
Sources: ../shared/reference/bybit.md §4-§9 and payloads/bybit_*.json, the corpus under
../shared/corpus/bybit.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

PriceLevel = tuple[str, str]
# Result Structs have a field named ``list`` (Bybit's name), which shadows the builtin inside
# their class body: annotate those fields with this alias.
_List = list

T = TypeVar("T")


# ============================================================================================
# Public WebSocket (bybit.md §6.1, §7). Every data message is
# {"topic": "...", "type": "snapshot"|"delta", "ts": ms, "data": ...}.


class OrderbookData(msgspec.Struct):
    """``s`` symbol, ``b`` bids (best first in snapshots), ``a`` asks, ``u`` update id of this
    depth topic, ``seq`` cross sequence (comparable across depths)."""

    s: str
    b: list[PriceLevel]
    a: list[PriceLevel]
    u: int
    seq: int | None = None


class OrderbookMessage(msgspec.Struct):
    """``orderbook.{depth}.{symbol}``: a snapshot replaces the book, a delta carries absolute
    sizes ("0" deletes). ``cts`` is the matching-engine time, ``ts`` the push time."""

    topic: str
    type: str
    ts: int
    data: OrderbookData
    cts: int | None = None


class PublicTrade(msgspec.Struct):
    """One trade of ``publicTrade.{symbol}``: ``S`` taker side (Buy/Sell), ``v`` size, ``p``
    price, ``i`` trade id (a string: UUID on derivatives, a number on spot), ``L`` tick
    direction (derivatives), ``BT`` block trade, ``RPI``, ``seq`` cross sequence."""

    T: int
    s: str
    S: str
    v: str
    p: str
    i: str
    L: str | None = None
    BT: bool = False
    RPI: bool | None = None
    seq: int | None = None


class PublicTradeMessage(msgspec.Struct):
    """Up to 1024 trades per message, oldest first."""

    topic: str
    type: str
    ts: int
    data: list[PublicTrade]


class TickerData(msgspec.Struct):
    """``tickers.{symbol}`` for spot and linear. Linear sends a snapshot, then deltas in which
    an absent field means unchanged (merge into the snapshot), so every field but the symbol
    is optional here. Spot sends snapshots only, without bid/ask or derivatives fields."""

    symbol: str
    lastPrice: str | None = None
    highPrice24h: str | None = None
    lowPrice24h: str | None = None
    prevPrice24h: str | None = None
    volume24h: str | None = None
    turnover24h: str | None = None
    price24hPcnt: str | None = None
    usdIndexPrice: str | None = None  # spot
    tickDirection: str | None = None
    prevPrice1h: str | None = None
    markPrice: str | None = None
    indexPrice: str | None = None
    openInterest: str | None = None
    openInterestValue: str | None = None
    nextFundingTime: str | None = None
    fundingRate: str | None = None
    bid1Price: str | None = None
    bid1Size: str | None = None
    ask1Price: str | None = None
    ask1Size: str | None = None
    fundingIntervalHour: str | None = None
    fundingCap: str | None = None
    deliveryTime: str | None = None
    basisRate: str | None = None
    deliveryFeeRate: str | None = None
    predictedDeliveryPrice: str | None = None
    basis: str | None = None
    basisRateYear: str | None = None
    preOpenPrice: str | None = None
    preQty: str | None = None
    curPreListingPhase: str | None = None


class TickerMessage(msgspec.Struct):
    """``cs`` is the cross sequence of the ticker (spot and linear)."""

    topic: str
    type: str
    ts: int
    data: TickerData
    cs: int | None = None


class OptionTickerData(msgspec.Struct):
    """Option ``tickers.{symbol}`` (decoded for completeness; exconn serves no options)."""

    symbol: str
    bidPrice: str
    bidSize: str
    askPrice: str
    askSize: str
    lastPrice: str
    markPrice: str
    indexPrice: str
    underlyingPrice: str
    bidIv: str = ""
    askIv: str = ""
    markPriceIv: str = ""
    highPrice24h: str = ""
    lowPrice24h: str = ""
    openInterest: str = ""
    turnover24h: str = ""
    volume24h: str = ""
    totalVolume: str = ""
    totalTurnover: str = ""
    delta: str = ""
    gamma: str = ""
    vega: str = ""
    theta: str = ""
    predictedDeliveryPrice: str = ""
    change24h: str = ""


class OptionTickerMessage(msgspec.Struct):
    topic: str
    ts: int
    data: OptionTickerData
    type: str = "snapshot"
    id: str | None = None


class KlineBar(msgspec.Struct):
    """One candle of ``kline.{interval}.{symbol}``; ``confirm`` is true once it closed.
    ``interval`` is Bybit's notation (1 3 5 15 30 60 120 240 360 720 D W M)."""

    start: int
    end: int
    interval: str
    open: str
    close: str
    high: str
    low: str
    volume: str
    turnover: str
    confirm: bool
    timestamp: int


class KlineMessage(msgspec.Struct):
    topic: str
    type: str
    ts: int
    data: list[KlineBar]


class LiquidationData(msgspec.Struct):
    price: str
    side: str
    size: str
    symbol: str
    updatedTime: int


class LiquidationMessage(msgspec.Struct):
    """``liquidation.{symbol}`` (legacy; exconn does not subscribe it)."""

    topic: str
    type: str
    ts: int
    data: LiquidationData


class TopicPeek(msgspec.Struct):
    """Only the routing keys of any frame: which decoder takes it."""

    topic: str | None = None
    op: str | None = None
    type: str | None = None


# ============================================================================================
# Control frames (bybit.md §6, §8, §9): requests, acks, pongs, auth replies. Their shape varies
# by channel, so one permissive Struct covers all of them.


class CommandData(msgspec.Struct):
    """Option/spread subscribe reply: ``{"failTopics":[],"successTopics":[...]}``."""

    successTopics: list[str] = msgspec.field(default_factory=list)
    failTopics: list[str] = msgspec.field(default_factory=list)


class OpReply(msgspec.Struct):
    """Every reply to a control frame:

    - subscribe ack, spot:  ``{"success":true,"ret_msg":"subscribe","conn_id":..,
      "req_id":"10001","op":"subscribe"}``; linear the same with ``"ret_msg":""``
    - private ack / auth: ``{"success":true,"ret_msg":"","op":"auth","conn_id":..}``
    - auth (newer shape): ``{"op":"auth","success":false,"retCode":10003,
      "retMsg":"Invalid apikey","connId":..}``
    - pong, spot/linear: ``{"success":true,"ret_msg":"pong","conn_id":..,"op":"ping"}``;
      private ``{"req_id":..,"op":"pong","args":["<ms>"],"conn_id":..}``; option
      ``{"args":["<ms>"],"op":"pong"}``; order entry ``{"retCode":0,"retMsg":"OK",
      "op":"pong","data":["<ms>"],"connId":..}``
    - option/spread subscribe: ``{"success":true,"conn_id":..,"data":{"failTopics":[],
      "successTopics":[..]},"type":"COMMAND_RESP"}``
    """

    op: str | None = None
    success: bool | None = None
    ret_msg: str | None = None
    conn_id: str | None = None
    req_id: str | None = None
    args: list[str] | None = None
    retCode: int | None = None
    retMsg: str | None = None
    connId: str | None = None
    type: str | None = None
    data: CommandData | list[str] | None = None

    @property
    def ok(self) -> bool:
        if self.success is not None:
            return self.success
        return self.retCode in (None, 0)

    @property
    def message(self) -> str:
        return self.ret_msg if self.ret_msg is not None else (self.retMsg or "")


class WsRequest(msgspec.Struct, omit_defaults=True):
    """An outbound control frame: ``{"op":"subscribe","args":[...],"req_id":"7"}``; auth
    args are ``[api_key, expires_ms, signature]``."""

    op: str
    args: list[Any] = msgspec.field(default_factory=list)
    req_id: str | None = None


class WsTradeRequest(msgspec.Struct, omit_defaults=True):
    """Order entry (``/v5/trade``): ``{"reqId","header":{"X-BAPI-TIMESTAMP",..},"op":
    "order.create","args":[{...REST params...}]}``."""

    op: str
    args: list[Any] = msgspec.field(default_factory=list)
    reqId: str | None = None
    header: dict[str, str] | None = None


class WsTradeResponse(msgspec.Struct):
    """Order-entry reply. ``data`` stays raw: its type depends on ``op`` (``OrderIds`` for
    order.create/amend/cancel, ``{"list":[...]}`` for the batch ops, ``["<ms>"]`` for pong);
    batch per-item results are in ``retExtInfo.list[{code,msg}]``."""

    retCode: int
    retMsg: str
    op: str
    reqId: str | None = None
    data: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    retExtInfo: Any = None
    header: dict[str, str] | None = None
    connId: str | None = None


# ============================================================================================
# Private WebSocket (bybit.md §8): {"id","topic","creationTime","data":[...]}. The REST
# order, execution and position lists use the same item shapes.


class Order(msgspec.Struct):
    """An ``order`` stream item and a ``/v5/order/realtime`` / ``history`` row."""

    symbol: str
    orderId: str
    orderLinkId: str
    side: str
    orderType: str
    price: str
    qty: str
    orderStatus: str
    createdTime: str
    updatedTime: str
    category: str = ""  # absent from REST rows (the result names the category once)
    timeInForce: str = ""
    avgPrice: str | None = None
    leavesQty: str = ""
    leavesValue: str = ""
    cumExecQty: str = "0"
    cumExecValue: str = "0"
    cumExecFee: str = "0"  # deprecated for linear/spot: see cumFeeDetail
    cumFeeDetail: dict[str, str] | None = None
    closedPnl: str = "0"
    cancelType: str = ""
    rejectReason: str = ""
    createType: str | None = None
    positionIdx: int = 0
    reduceOnly: bool = False
    closeOnTrigger: bool = False
    isLeverage: str = ""
    marketUnit: str = ""
    triggerPrice: str = ""
    triggerBy: str = ""
    triggerDirection: int = 0
    stopOrderType: str = ""
    takeProfit: str = ""
    stopLoss: str = ""
    tpslMode: str = ""
    smpType: str = ""
    smpGroup: int = 0
    smpOrderId: str = ""
    orderIv: str | None = None
    blockTradeId: str | None = None
    feeCurrency: str = ""
    lastPriceOnCreated: str = ""


class OrderMessage(msgspec.Struct):
    topic: str
    creationTime: int
    data: list[Order]
    id: str | None = None


class ExtraFee(msgspec.Struct):
    feeCoin: str
    feeType: str
    fee: str
    feeRate: str = ""
    subFeeType: str = ""


class Execution(msgspec.Struct):
    """An ``execution`` stream item and a ``/v5/execution/list`` row. Dedupe by ``execId``."""

    symbol: str
    orderId: str
    orderLinkId: str
    side: str
    execId: str
    execPrice: str
    execQty: str
    execType: str
    execTime: str
    category: str = ""
    execFee: str = "0"
    execValue: str = ""
    feeRate: str = ""
    feeCurrency: str = ""
    isMaker: bool = False
    orderPrice: str = ""
    orderQty: str = ""
    leavesQty: str = ""
    orderType: str = ""
    stopOrderType: str = ""
    markPrice: str = ""
    closedSize: str = ""
    execPnl: str = ""
    seq: int | None = None
    createType: str = ""
    blockTradeId: str = ""
    # A list in the stream; REST rows send "" when there are none.
    extraFees: list[ExtraFee] | str | None = None


class ExecutionMessage(msgspec.Struct):
    topic: str
    creationTime: int
    data: list[Execution]
    id: str | None = None


class FastExecution(msgspec.Struct):
    """``execution.fast``: Trade fills only, lower latency; ``orderLinkId`` is "" for maker
    fills."""

    symbol: str
    execId: str
    execPrice: str
    execQty: str
    orderId: str
    side: str
    execTime: str
    category: str = ""
    isMaker: bool = False
    orderLinkId: str = ""
    seq: int | None = None


class FastExecutionMessage(msgspec.Struct):
    topic: str
    creationTime: int
    data: list[FastExecution]
    id: str | None = None


class Position(msgspec.Struct):
    """A ``position`` stream item (``entryPrice``) and a ``/v5/position/list`` row
    (``avgPrice``)."""

    symbol: str
    side: str  # Buy, Sell or "" (flat)
    size: str
    category: str = ""
    positionIdx: int = 0
    entryPrice: str | None = None  # stream
    avgPrice: str | None = None  # REST
    markPrice: str = ""
    leverage: str = ""
    positionValue: str = ""
    liqPrice: str = ""
    bustPrice: str = ""
    breakEvenPrice: str | None = None
    positionIM: str = ""
    positionMM: str = ""
    takeProfit: str = ""
    stopLoss: str = ""
    trailingStop: str = ""
    unrealisedPnl: str = ""
    curRealisedPnl: str = ""
    cumRealisedPnl: str = ""
    positionStatus: str = ""
    adlRankIndicator: int = 0
    isReduceOnly: bool = False
    tradeMode: int = 0
    seq: int | None = None
    createdTime: str = ""
    updatedTime: str = ""


class PositionMessage(msgspec.Struct):
    topic: str
    creationTime: int
    data: list[Position]
    id: str | None = None


class WalletCoin(msgspec.Struct):
    coin: str
    equity: str = ""
    usdValue: str = ""
    walletBalance: str = ""
    locked: str = ""
    borrowAmount: str = ""
    accruedInterest: str = ""
    totalOrderIM: str = ""
    totalPositionIM: str = ""
    totalPositionMM: str = ""
    unrealisedPnl: str = ""
    cumRealisedPnl: str = ""
    spotBorrow: str = ""
    availableToWithdraw: str = ""  # deprecated for UNIFIED (2025-01-09)
    bonus: str = ""
    collateralSwitch: bool | None = None
    marginCollateral: bool | None = None


class WalletAccount(msgspec.Struct):
    """A ``wallet`` stream item and a ``/v5/account/wallet-balance`` row (account totals in
    USD, then one entry per coin)."""

    coin: list[WalletCoin]
    accountType: str = ""
    totalEquity: str = ""
    totalWalletBalance: str = ""
    totalMarginBalance: str = ""
    totalAvailableBalance: str = ""
    totalPerpUPL: str = ""
    totalInitialMargin: str = ""
    totalMaintenanceMargin: str = ""
    accountIMRate: str = ""
    accountMMRate: str = ""
    accountLTV: str = ""


class WalletMessage(msgspec.Struct):
    """No snapshot on subscribe: seed balances from REST wallet-balance (bybit.md §8)."""

    topic: str
    creationTime: int
    data: list[WalletAccount]
    id: str | None = None


# ============================================================================================
# REST (bybit.md §2, §4). Every response is {"retCode","retMsg","result","retExtInfo","time"};
# success is retCode == 0 whatever retMsg says.


class Envelope(msgspec.Struct, Generic[T]):
    retCode: int
    retMsg: str
    result: T
    retExtInfo: Any = None
    time: int | None = None


class ErrorBody(msgspec.Struct):
    """Any envelope read for its code only (a failed call may omit or empty ``result``)."""

    retCode: int
    retMsg: str
    result: Any = None
    retExtInfo: Any = None
    time: int | None = None


class EmptyResult(msgspec.Struct):
    """``{}`` results (set-leverage, switch-mode)."""


class ServerTime(msgspec.Struct):
    """``GET /v5/market/time``: seconds and nanoseconds as strings."""

    timeSecond: str
    timeNano: str


class PriceFilter(msgspec.Struct):
    tickSize: str
    minPrice: str = ""
    maxPrice: str = ""


class LeverageFilter(msgspec.Struct):
    minLeverage: str
    maxLeverage: str
    leverageStep: str


class SpotLotSizeFilter(msgspec.Struct):
    """Spot: ``basePrecision`` is the quantity step; ``minOrderQty``/``maxOrderQty``/
    ``maxOrderAmt`` are deprecated (``minOrderAmt``, ``maxLimitOrderQty``,
    ``maxMarketOrderQty`` replace them, bybit.md §4.1)."""

    basePrecision: str
    quotePrecision: str = ""
    minOrderQty: str = ""
    maxOrderQty: str = ""
    minOrderAmt: str = ""
    maxOrderAmt: str = ""
    maxLimitOrderQty: str | None = None
    maxMarketOrderQty: str | None = None
    postOnlyMaxLimitOrderSize: str | None = None


class SpotInstrument(msgspec.Struct):
    symbol: str
    baseCoin: str
    quoteCoin: str
    status: str
    lotSizeFilter: SpotLotSizeFilter
    priceFilter: PriceFilter
    innovation: str = ""
    marginTrading: str = ""
    stTag: str = ""
    symbolType: str = ""
    symbolId: int | None = None


class LinearLotSizeFilter(msgspec.Struct):
    qtyStep: str
    minOrderQty: str
    maxOrderQty: str
    maxMktOrderQty: str = ""
    postOnlyMaxOrderQty: str | None = None
    minNotionalValue: str = ""


class LinearInstrument(msgspec.Struct):
    """A linear (or inverse) contract; ``contractType`` LinearPerpetual, LinearFutures,
    InversePerpetual, InverseFutures."""

    symbol: str
    contractType: str
    status: str
    baseCoin: str
    quoteCoin: str
    priceFilter: PriceFilter
    lotSizeFilter: LinearLotSizeFilter
    settleCoin: str = ""
    launchTime: str = ""
    deliveryTime: str = ""
    priceScale: str = ""
    leverageFilter: LeverageFilter | None = None
    fundingInterval: int = 0
    symbolType: str = ""
    isPreListing: bool = False
    symbolId: int | None = None


class OptionLotSizeFilter(msgspec.Struct):
    qtyStep: str
    minOrderQty: str
    maxOrderQty: str


class OptionInstrument(msgspec.Struct):
    symbol: str
    status: str
    baseCoin: str
    quoteCoin: str
    settleCoin: str
    optionsType: str
    priceFilter: PriceFilter
    lotSizeFilter: OptionLotSizeFilter
    launchTime: str = ""
    deliveryTime: str = ""
    displayName: str = ""


class InstrumentsResult(msgspec.Struct, Generic[T]):
    """``GET /v5/market/instruments-info``; linear pages through ``nextPageCursor``."""

    list: _List[T]
    category: str | None = None
    nextPageCursor: str | None = None


class OrderbookResult(msgspec.Struct):
    """``GET /v5/market/orderbook``: b descending, a ascending; ``u`` is the 1000-level
    stream's update id."""

    s: str
    b: list[PriceLevel]
    a: list[PriceLevel]
    ts: int
    u: int
    seq: int | None = None
    cts: int | None = None


class RestTrade(msgspec.Struct):
    """``GET /v5/market/recent-trade`` row; ``side`` is the taker's."""

    execId: str
    symbol: str
    price: str
    size: str
    side: str
    time: str
    isBlockTrade: bool = False
    isRPITrade: bool | None = None
    seq: str | int | None = None


class RecentTradesResult(msgspec.Struct):
    list: _List[RestTrade]
    category: str = ""


# ``GET /v5/market/kline`` row, newest first: start, open, high, low, close, volume, turnover.
KlineRow = tuple[str, str, str, str, str, str, str]


class KlinesResult(msgspec.Struct):
    list: _List[KlineRow]
    symbol: str = ""
    category: str = ""


class RestTicker(msgspec.Struct):
    """``GET /v5/market/tickers`` row for any category (spot has no derivatives fields)."""

    symbol: str
    lastPrice: str
    highPrice24h: str = ""
    lowPrice24h: str = ""
    prevPrice24h: str = ""
    volume24h: str = ""
    turnover24h: str = ""
    price24hPcnt: str = ""
    bid1Price: str = ""
    bid1Size: str = ""
    ask1Price: str = ""
    ask1Size: str = ""
    usdIndexPrice: str = ""
    prevPrice1h: str = ""
    markPrice: str = ""
    indexPrice: str = ""
    openInterest: str = ""
    openInterestValue: str = ""
    fundingRate: str = ""
    nextFundingTime: str = ""
    fundingIntervalHour: str = ""
    fundingCap: str = ""
    predictedDeliveryPrice: str = ""
    deliveryTime: str = ""
    basis: str = ""
    basisRate: str = ""
    deliveryFeeRate: str = ""
    bid1Iv: str = ""  # option
    ask1Iv: str = ""
    markIv: str = ""
    underlyingPrice: str = ""


class TickersResult(msgspec.Struct):
    list: _List[RestTicker]
    category: str = ""


class OrderIds(msgspec.Struct):
    """create / amend / cancel: an acknowledgement only (processing is asynchronous)."""

    orderId: str
    orderLinkId: str


class CancelAllResult(msgspec.Struct):
    list: _List[OrderIds]
    success: str | None = None


class OrdersResult(msgspec.Struct):
    """``/v5/order/realtime`` and ``/v5/order/history`` (newest first)."""

    list: _List[Order]
    nextPageCursor: str | None = None
    category: str | None = None


class ExecutionsResult(msgspec.Struct):
    list: _List[Execution]
    nextPageCursor: str | None = None
    category: str | None = None


class WalletBalanceResult(msgspec.Struct):
    list: _List[WalletAccount]


class PositionsResult(msgspec.Struct):
    list: _List[Position]
    nextPageCursor: str | None = None
    category: str | None = None


class FeeRate(msgspec.Struct):
    symbol: str
    takerFeeRate: str
    makerFeeRate: str
    baseCoin: str = ""


class FeeRatesResult(msgspec.Struct):
    list: _List[FeeRate]


class FundingRate(msgspec.Struct):
    symbol: str
    fundingRate: str
    fundingRateTimestamp: str


class FundingHistoryResult(msgspec.Struct):
    list: _List[FundingRate]
    category: str = ""


class AccountInfo(msgspec.Struct):
    """``GET /v5/account/info``."""

    marginMode: str
    updatedTime: str
    unifiedMarginStatus: int
    dcpStatus: str = ""
    timeWindow: int = 0
    smpGroup: int = 0
    isMasterTrader: bool = False
    spotHedgingStatus: str = ""


# ============================================================================================
# Decoders (a Decoder is reusable and faster than msgspec.json.decode(type=...) per call).

orderbook_decoder = msgspec.json.Decoder(OrderbookMessage)
public_trade_decoder = msgspec.json.Decoder(PublicTradeMessage)
ticker_decoder = msgspec.json.Decoder(TickerMessage)
option_ticker_decoder = msgspec.json.Decoder(OptionTickerMessage)
kline_decoder = msgspec.json.Decoder(KlineMessage)
liquidation_decoder = msgspec.json.Decoder(LiquidationMessage)
peek_decoder = msgspec.json.Decoder(TopicPeek)
op_reply_decoder = msgspec.json.Decoder(OpReply)
ws_request_decoder = msgspec.json.Decoder(WsRequest)
ws_trade_request_decoder = msgspec.json.Decoder(WsTradeRequest)
ws_trade_response_decoder = msgspec.json.Decoder(WsTradeResponse)

order_message_decoder = msgspec.json.Decoder(OrderMessage)
execution_message_decoder = msgspec.json.Decoder(ExecutionMessage)
fast_execution_message_decoder = msgspec.json.Decoder(FastExecutionMessage)
position_message_decoder = msgspec.json.Decoder(PositionMessage)
wallet_message_decoder = msgspec.json.Decoder(WalletMessage)

envelope_decoder = msgspec.json.Decoder(Envelope[msgspec.Raw])
error_decoder = msgspec.json.Decoder(ErrorBody)
empty_result_decoder = msgspec.json.Decoder(Envelope[EmptyResult])
server_time_decoder = msgspec.json.Decoder(Envelope[ServerTime])
spot_instruments_decoder = msgspec.json.Decoder(Envelope[InstrumentsResult[SpotInstrument]])
linear_instruments_decoder = msgspec.json.Decoder(Envelope[InstrumentsResult[LinearInstrument]])
option_instruments_decoder = msgspec.json.Decoder(Envelope[InstrumentsResult[OptionInstrument]])
orderbook_rest_decoder = msgspec.json.Decoder(Envelope[OrderbookResult])
recent_trades_decoder = msgspec.json.Decoder(Envelope[RecentTradesResult])
klines_decoder = msgspec.json.Decoder(Envelope[KlinesResult])
tickers_decoder = msgspec.json.Decoder(Envelope[TickersResult])
order_ids_decoder = msgspec.json.Decoder(Envelope[OrderIds])
cancel_all_decoder = msgspec.json.Decoder(Envelope[CancelAllResult])
orders_decoder = msgspec.json.Decoder(Envelope[OrdersResult])
executions_decoder = msgspec.json.Decoder(Envelope[ExecutionsResult])
wallet_balance_decoder = msgspec.json.Decoder(Envelope[WalletBalanceResult])
positions_decoder = msgspec.json.Decoder(Envelope[PositionsResult])
fee_rates_decoder = msgspec.json.Decoder(Envelope[FeeRatesResult])
funding_history_decoder = msgspec.json.Decoder(Envelope[FundingHistoryResult])
account_info_decoder = msgspec.json.Decoder(Envelope[AccountInfo])

ws_request_encoder = msgspec.json.Encoder()

# The hot-path frame classes, read from the first bytes of compact JSON (Bybit and the
# simulator both write ``topic`` first); anything else goes through ``peek_decoder``.
ORDERBOOK, TRADE, TICKER, KLINE, CONTROL, OTHER = range(6)
_PREFIXES = (
    (b'{"topic":"orderbook.', ORDERBOOK),
    (b'{"topic":"publicTrade.', TRADE),
    (b'{"topic":"tickers.', TICKER),
    (b'{"topic":"kline.', KLINE),
)
_FAMILIES = {"orderbook": ORDERBOOK, "publicTrade": TRADE, "tickers": TICKER, "kline": KLINE}


def frame_class(raw: bytes) -> int:
    """ORDERBOOK, TRADE, TICKER, KLINE, CONTROL (an op reply) or OTHER (a topic exconn does
    not decode). Raises msgspec.DecodeError when the frame is not a JSON object."""
    if raw.startswith(b'{"topic":"'):
        for prefix, cls in _PREFIXES:
            if raw.startswith(prefix):
                return cls
    peek = peek_decoder.decode(raw)
    if peek.topic is not None:
        return _FAMILIES.get(peek.topic.partition(".")[0], OTHER)
    if peek.op is not None or peek.type == "COMMAND_RESP":
        return CONTROL
    return OTHER


def decode_control(raw: bytes) -> OpReply:
    return op_reply_decoder.decode(raw)
