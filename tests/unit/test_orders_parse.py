"""REST order / trade / balance / position answers -> model events, on the reference payloads
(../shared/reference/payloads) and the corpus (../shared/corpus), both venues."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from exconn.messages import PositionSide
from exconn.model.decimal import utc_from_ms
from exconn.model.enums import Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.orders.read_model import ReadModel
from exconn.venues.binance import orders_parse as bn
from exconn.venues.binance import wire as bw
from exconn.venues.bybit import orders_parse as bb
from exconn.venues.bybit import wire as yw
from tests.conftest import CORPUS, REFERENCE, require_shared

D = Decimal
S = OrderStatus


def payload(name: str) -> bytes:
    return (require_shared(REFERENCE / "payloads") / name).read_bytes()


def corpus(*parts: str) -> bytes:
    return require_shared(CORPUS.joinpath(*parts)).read_bytes()


def slash(venue_symbol: str) -> str | None:
    for quote in ("USDT", "BTC"):
        if venue_symbol.endswith(quote):
            return f"{venue_symbol[: -len(quote)]}/{quote}"
    return None


def slash2(_market: Market, venue_symbol: str) -> str | None:
    return slash(venue_symbol)


# ------------------------------------------------------------------ Binance spot
def test_binance_spot_query_order_and_open_orders() -> None:
    order = bw.spot_order_decoder.decode(payload("binance_spot_rest_queryOrder.json"))
    u = bn.parse_rest_order(order, Market.SPOT, "LTC/BTC")
    assert (u.exchange, u.market, u.symbol) == ("binance", "spot", "LTC/BTC")
    assert (u.client_order_id, u.exchange_order_id) == ("myOrder1", "1")
    assert (u.side, u.order_type, u.time_in_force) == (
        OrderSide.BUY,
        OrderType.LIMIT,
        TimeInForce.GTC,
    )
    assert (u.status, u.price, u.qty, u.filled_qty, u.avg_price) == (
        S.NEW,
        D("0.1"),
        D("1.0"),
        D("0.0"),
        None,
    )
    assert u.ts == utc_from_ms(1499827319559) and u.trigger_price is None and u.quote_qty is None
    rows = bw.spot_open_orders_decoder.decode(payload("binance_spot_rest_openOrders.json"))
    assert bn.parse_rest_orders(rows, Market.SPOT, slash) == [u]
    rows = bw.spot_open_orders_decoder.decode(
        corpus("binance", "spot", "rest", "nautilus-rs__all_orders_response.json")
    )
    assert bn.parse_rest_orders(rows, "spot", slash) == [u]
    assert bn.parse_rest_orders(rows, "spot", lambda s: None) == []


def test_binance_spot_filled_order_has_an_average() -> None:
    raw = msgspec.json.decode(payload("binance_spot_rest_queryOrder.json"))
    raw |= {"executedQty": "1.0", "cummulativeQuoteQty": "0.25", "status": "FILLED"}
    u = bn.parse_rest_order(msgspec.convert(raw, bw.SpotOrder), "spot", "LTC/BTC")
    assert u.status is S.FILLED and u.avg_price == D("0.25")


def test_binance_spot_order_results_and_their_fills() -> None:
    full = bw.spot_order_full_decoder.decode(payload("binance_spot_rest_order_full.json"))
    u = bn.parse_rest_order(full, Market.SPOT, "BTC/USDT")
    assert u.ts == utc_from_ms(full.transactTime)
    assert u.exchange_order_id == str(full.orderId)
    fills = bn.parse_order_result_fills(full, "BTC/USDT", full.fills)
    assert len(fills) == len([f for f in full.fills if f.tradeId is not None])
    assert sum(f.qty for f in fills) == D(full.executedQty)
    cancel = bw.spot_order_result_decoder.decode(payload("binance_spot_rest_cancelOrder.json"))
    c = bn.parse_rest_order(cancel, "spot", "LTC/BTC")
    assert c.status is S.CANCELED
    assert c.client_order_id == cancel.origClientOrderId  # the order's id, not the cancel's


def test_binance_spot_my_trades() -> None:
    rows = bw.spot_my_trades_decoder.decode(payload("binance_spot_rest_myTrades.json"))
    (f,) = bn.parse_rest_fills(rows, Market.SPOT, slash)
    assert (f.symbol, f.trade_id, f.exchange_order_id, f.client_order_id) == (
        "BNB/BTC",
        "28457",
        "100234",
        None,
    )
    assert (f.side, f.price, f.qty, f.fee, f.fee_asset, f.is_maker) == (
        OrderSide.BUY,
        D("4.00000100"),
        D("12.00000000"),
        D("10.10000000"),
        "BNB",
        False,
    )
    assert f.ts == utc_from_ms(1499865549590)


def test_binance_spot_account_balances() -> None:
    account = bw.spot_account_decoder.decode(
        corpus("binance", "spot", "rest", "nautilus-rs__account_response.json")
    )
    btc, ltc = bn.parse_rest_balances(account)
    assert (btc.market, btc.asset, btc.free, btc.locked, btc.total) == (
        "spot",
        "BTC",
        D("4723846.89208129"),
        D("0"),
        D("4723846.89208129"),
    )
    assert btc.ts == utc_from_ms(123456789) and ltc.asset == "LTC"
    bn.parse_rest_balances(
        bw.spot_account_decoder.decode(payload("binance_spot_rest_account.json"))
    )


# ------------------------------------------------------------------ Binance USD-M
def test_binance_usdm_order() -> None:
    order = bw.usdm_order_decoder.decode(payload("binance_usdm_rest_order.json"))
    u = bn.parse_rest_order(order, Market.LINEAR, "BTC/USDT")
    assert (u.market, u.client_order_id, u.exchange_order_id, u.status) == (
        "linear",
        "testOrder123",
        "12345678",
        S.NEW,
    )
    assert (u.price, u.qty, u.avg_price, u.position_side) == (
        D("50000.00"),
        D("0.001"),
        None,
        PositionSide.BOTH,
    )
    rows = bw.usdm_open_orders_decoder.decode(
        corpus(
            "binance",
            "usdm",
            "rest",
            "nautilus-py__http_responses_http_futures_account_orders.json",
        )
    )
    (t,) = bn.parse_rest_orders(rows, "linear", slash)
    assert t.order_type is OrderType.MARKET and t.venue_type == "TRAILING_STOP_MARKET"
    assert t.trigger_price == D("9300") and t.position_side is PositionSide.SHORT


def test_binance_usdm_user_trades() -> None:
    rows = bw.usdm_user_trades_decoder.decode(
        corpus(
            "binance",
            "usdm",
            "rest",
            "nautilus-py__http_responses_http_futures_account_trades.json",
        )
    )
    sell, buy = bn.parse_rest_fills(rows, Market.LINEAR, slash)
    assert (sell.trade_id, sell.side, sell.fee, sell.fee_asset) == (
        "82357626",
        OrderSide.SELL,
        D("0.00555670"),
        "USDT",
    )
    assert buy.side is OrderSide.BUY and buy.market == "linear"


def test_binance_usdm_positions_and_balances() -> None:
    rows = bw.position_risk_decoder.decode(payload("binance_usdm_rest_positionRisk_v2.json"))
    (p,) = bn.parse_rest_positions(rows, slash)
    assert (p.symbol, p.qty, p.entry_price, p.mark_price, p.leverage, p.margin_mode) == (
        "BTC/USDT",
        D("0.001"),
        D("50000.0"),
        D("51000.0"),
        D("20"),
        "cross",
    )
    hedge = bw.position_risk_decoder.decode(
        corpus(
            "binance",
            "usdm",
            "rest",
            "nautilus-py__http_responses_http_futures_account_positions_hedge.json",
        )
    )
    long, short = bn.parse_rest_positions(hedge, slash, now_ms=1700000000000)
    assert long.position_side is PositionSide.LONG and long.qty == D("20.000")
    assert short.position_side is PositionSide.SHORT and short.qty == D("-10.000")
    assert short.ts == utc_from_ms(1700000000000)  # updateTime 0
    balances = msgspec.json.decode(
        corpus("binance", "usdm", "rest", "nautilus-rs__balance.json"), type=list[bw.UsdmBalance]
    )
    (b,) = bn.parse_rest_balances(balances)
    assert (b.market, b.asset, b.total, b.free) == ("linear", "USDT", D("122.12345678"), None)


# ------------------------------------------------------------------ Bybit
def test_bybit_order_realtime_and_history() -> None:
    realtime = yw.orders_decoder.decode(payload("bybit_rest_order_realtime.json")).result
    (u,) = bb.parse_rest_orders(realtime, slash2)
    assert (u.exchange, u.market, u.symbol) == ("bybit", "linear", "ETH/USDT")
    assert (u.client_order_id, u.exchange_order_id, u.status) == (
        "test-000005",
        "fd4300ae-7847-404e-b947-b46980a4d140",
        S.NEW,
    )
    assert u.position_side is PositionSide.LONG and u.reject_reason is None
    history = yw.orders_decoder.decode(payload("bybit_rest_order_history.json")).result
    (h,) = bb.parse_rest_orders(history, slash2)
    assert h.status is S.CANCELED and h.time_in_force is TimeInForce.POST_ONLY
    assert h.reject_reason == "EC_PostOnlyWillTakeLiquidity"
    # a result of a category exconn does not trade yields nothing
    assert bb.parse_rest_orders(msgspec.structs.replace(history, category="option"), slash2) == []


def test_bybit_corpus_orders_merge_in_the_read_model() -> None:
    result = yw.orders_decoder.decode(
        corpus("bybit", "rest", "nautilus-rs__http_get_orders_history_with_duplicate.json")
    ).result
    rows = bb.parse_rest_orders(result, slash2, market=Market.LINEAR)
    assert rows
    model = ReadModel("bybit")
    events = model.apply_all(rows)
    # the duplicated row publishes once
    assert len(events) == len({(e.exchange_order_id, e.status, e.ts) for e in events})  # type: ignore[union-attr]


def test_bybit_execution_list() -> None:
    result = yw.executions_decoder.decode(payload("bybit_rest_execution_list.json")).result
    (f,) = bb.parse_rest_fills(result, lambda m, s: "ETH/PERP", settle_of=lambda m, s: "USDT")
    assert (f.market, f.trade_id, f.side, f.qty, f.price, f.fee, f.fee_asset) == (
        "linear",
        "e0cbe81d-0f18-5866-9415-cf319b5dab3b",
        OrderSide.BUY,
        D("0.1"),
        D("1190.15"),
        D("0.071409"),
        "USDT",
    )
    assert f.seq == 4688002127 and f.client_order_id is None
    corpus_result = yw.executions_decoder.decode(
        corpus("bybit", "rest", "nautilus-rs__http_get_executions.json")
    ).result
    assert bb.parse_rest_fills(corpus_result, slash2, market=Market.LINEAR)


def test_bybit_wallet_and_positions() -> None:
    envelope = yw.wallet_balance_decoder.decode(payload("bybit_rest_wallet_balance.json"))
    assert envelope.time is not None
    (btc,) = bb.parse_rest_balances(envelope.result, envelope.time)
    assert (btc.market, btc.asset, btc.total, btc.locked) == ("unified", "BTC", D("0"), D("0"))
    assert btc.ts == utc_from_ms(envelope.time)
    positions = yw.positions_decoder.decode(payload("bybit_rest_position_list.json"))
    # the reference row is inverse (BTCUSD): skipped unless named linear
    assert bb.parse_rest_positions(positions.result, slash2, 0) == []
    (p,) = bb.parse_rest_positions(positions.result, lambda m, s: "BTC/USD", 0, Market.LINEAR)
    assert (p.qty, p.entry_price, p.leverage, p.seq) == (
        D("-300"),
        D("27464.50441675"),
        D("10"),
        5723621632,
    )
    assert p.ts == utc_from_ms(1697673600012)
    corpus_positions = yw.positions_decoder.decode(
        corpus("bybit", "rest", "nautilus-rs__http_get_positions.json")
    ).result
    bb.parse_rest_positions(corpus_positions, slash2, 0)


def test_same_function_names_in_both_venues() -> None:
    assert set(bn.__all__) - {"parse_order_result_fills"} <= set(bb.__all__)
