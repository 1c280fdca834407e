"""Bybit private stream (exconn.venues.bybit.user_stream): frames to send, the handshake's state,
and every private payload of the reference and corpus parsed into exconn's events, exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exconn.errors import AuthError, ClockSkew, ExchangeError
from exconn.messages import BalanceUpdate, Fill, OrderUpdate, PositionSide, PositionUpdate
from exconn.model.enums import Exchange, Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.venues.bybit import user_stream as us
from exconn.venues.bybit.user_stream import UserStreamHandler
from exconn.venues.keys import Credentials
from tests.conftest import CORPUS, REFERENCE, require_shared
from tests.unit.stream_support import instrument

# vectors.md §4 Y3: a synthetic secret and the signature of "GET/realtime1662350400000".
SECRET = "TEST-SECRET-not-a-real-key-0123456789"
Y3 = "ee26df9d2c70a138aac96660f6508021c262dbf008a9e2f81d75f11a650eeb1c"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def instruments() -> list[Any]:
    linear = [
        instrument(Exchange.BYBIT, Market.LINEAR, base, "USDT", tick="0.0001", step="0.001")
        for base in ("BTC", "ETH", "XRP", "ICP")
    ]
    spot = [
        instrument(Exchange.BYBIT, Market.SPOT, base, "USDT", tick="0.001", step="0.1")
        for base in ("APEX", "BTC", "ETH")
    ]
    return linear + spot


@pytest.fixture
def handler() -> UserStreamHandler:
    return UserStreamHandler(instruments())


def payload(name: str) -> bytes:
    return (require_shared(REFERENCE / "payloads") / name).read_bytes()


def recorded(name: str) -> bytes:
    return (require_shared(CORPUS / "bybit" / "ws") / name).read_bytes()


def frame(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# Frames to send


def test_auth_frame_signs_get_realtime_and_sends_expiry_as_a_number() -> None:
    creds = Credentials("api_key", secret=SECRET)
    sent = json.loads(us.auth_frame(creds, 1662350400000))
    assert sent == {"op": "auth", "args": ["api_key", 1662350400000, Y3], "req_id": "auth"}


def test_open_frames_auth_then_subscribe_with_expiry_ahead_of_server_time(
    handler: UserStreamHandler,
) -> None:
    creds = Credentials("api_key", secret=SECRET)
    auth, subscribe = (json.loads(f) for f in handler.open_frames(creds, 1662350395000))
    assert auth["args"] == ["api_key", 1662350395000 + us.AUTH_EXPIRY_MS, Y3]
    assert subscribe == {
        "op": "subscribe",
        "args": ["order", "execution", "position", "wallet"],
        "req_id": "subscribe",
    }
    # Once authenticated, a resubscribe does not authenticate again ("Repeat auth").
    handler.on_frame(payload("bybit_ws_auth_response.json"))
    (again,) = handler.open_frames(creds, 1662350395000)
    assert json.loads(again)["op"] == "subscribe"


def test_ping_and_close_frames(handler: UserStreamHandler) -> None:
    assert json.loads(handler.ping_frame() or b"") == {"op": "ping", "req_id": "ping"}
    assert us.PING_INTERVAL_S == 20.0
    assert handler.close_frames() == []
    handler.on_frame(payload("bybit_ws_subscribe_response_private.json"))
    (close,) = handler.close_frames()
    assert json.loads(close)["op"] == "unsubscribe"


def test_frames_and_handler_never_show_the_secret() -> None:
    creds = Credentials("api_key", secret=SECRET)
    h = UserStreamHandler(instruments())
    frames = h.open_frames(creds, 1662350395000)
    assert all(SECRET.encode() not in f for f in frames)
    assert SECRET not in repr(h) and "api_key" not in repr(h)


# --------------------------------------------------------------------------------------------
# Handshake state


def test_auth_success_then_subscribe_ack(handler: UserStreamHandler) -> None:
    assert not handler.authenticated and not handler.subscribed
    assert handler.on_frame(payload("bybit_ws_auth_response.json")) == []
    assert handler.authenticated and not handler.subscribed
    assert handler.on_frame(payload("bybit_ws_subscribe_response_private.json")) == []
    assert handler.subscribed and handler.auth_error is None and handler.error is None
    assert handler.on_frame(payload("bybit_ws_pong_private.json")) == []
    assert (handler.malformed, handler.ignored) == (0, 0)
    handler.on_disconnect()
    assert not handler.authenticated and not handler.subscribed


def test_auth_success_newer_reply_shape(handler: UserStreamHandler) -> None:
    handler.on_frame(recorded("nautilus-rs__ws_auth_success.json"))
    assert handler.authenticated and handler.auth_error is None


def test_auth_failure_is_a_typed_auth_error_with_code_and_message(
    handler: UserStreamHandler,
) -> None:
    handler.on_frame(payload("bybit_ws_auth_failure.json"))
    err = handler.auth_error
    assert isinstance(err, AuthError) and handler.error is err
    assert (err.exchange, err.code, err.venue_message) == ("bybit", 10003, "Invalid apikey")
    assert "environment" in str(err)  # says what to do
    assert not handler.authenticated and not handler.subscribed
    # The subscribe sent with the auth fails too: the auth error stays the reason.
    handler.on_frame(
        frame({"success": False, "ret_msg": "Request not authorized", "op": "subscribe"})
    )
    assert handler.auth_error is err and not handler.subscribed


def test_auth_failure_without_a_code_old_reply_shape(handler: UserStreamHandler) -> None:
    handler.on_frame(frame({"success": False, "ret_msg": "error sign!", "op": "auth"}))
    assert isinstance(handler.auth_error, AuthError)
    assert handler.auth_error.venue_message == "error sign!"


def test_expired_auth_is_clock_skew_not_an_auth_error(handler: UserStreamHandler) -> None:
    handler.on_frame(
        frame({"op": "auth", "success": False, "retCode": 10002, "retMsg": "expired", "connId": ""})
    )
    assert isinstance(handler.error, ClockSkew) and handler.auth_error is None
    assert not handler.authenticated


def test_auth_error_never_carries_the_signature() -> None:
    h = UserStreamHandler(instruments())
    h.on_frame(
        frame(
            {
                "op": "auth",
                "success": False,
                "retCode": 10004,
                "retMsg": f"error sign! signature={Y3}",
                "connId": "x",
            }
        )
    )
    assert h.auth_error is not None and Y3 not in str(h.auth_error) + repr(h.auth_error)


def test_subscribe_failure_is_recorded(handler: UserStreamHandler) -> None:
    handler.on_frame(payload("bybit_ws_auth_response.json"))
    handler.on_frame(recorded("nautilus-rs__ws_subscription_failure.json"))
    assert not handler.subscribed and isinstance(handler.error, ExchangeError)
    assert handler.error.venue_message == "Invalid topic: invalid.topic.BTCUSDT"


# --------------------------------------------------------------------------------------------
# Events: reference payloads


def test_execution_payload_is_a_fill(handler: UserStreamHandler) -> None:
    assert handler.on_frame(payload("bybit_ws_execution.json")) == [
        Fill(
            exchange="bybit",
            market="linear",
            symbol="BTC/USDT:USDT",
            trade_id="0ab1bdf7-4219-438b-b30a-32ec863018f7",
            exchange_order_id="9aac161b-8ed6-450d-9cab-c5cc67c21784",
            client_order_id=None,
            side=OrderSide.SELL,
            price=Decimal("95900.1"),
            qty=Decimal("0.5"),
            fee=Decimal("26.3725275"),
            fee_asset="USDT",
            is_maker=False,
            ts=datetime(2025, 5, 3, 11, 6, 40, 353000, tzinfo=UTC),
            seq=140612148849382,
        )
    ]


def test_order_payload_for_an_option_is_ignored(handler: UserStreamHandler) -> None:
    # ETH-30DEC22-1400-C, category option: exconn trades spot and linear only.
    assert handler.on_frame(payload("bybit_ws_order.json")) == []
    assert (handler.ignored, handler.malformed, handler.unmapped) == (1, 0, 0)


def test_position_payload_hedge_short_side_flat(handler: UserStreamHandler) -> None:
    assert handler.on_frame(payload("bybit_ws_position.json")) == [
        PositionUpdate(
            exchange="bybit",
            market="linear",
            symbol="BTC/USDT:USDT",
            position_side=PositionSide.SHORT,  # positionIdx 2
            qty=Decimal(0),
            ts=at(1697682317038),
            entry_price=None,
            unrealized_pnl=Decimal(0),
            realized_pnl=Decimal("-25.06579337"),
            leverage=Decimal(10),
            mark_price=Decimal("28184.5"),
            liquidation_price=None,
            seq=8327597863,
        )
    ]


def test_wallet_payload_is_one_balance_per_coin(handler: UserStreamHandler) -> None:
    assert handler.on_frame(payload("bybit_ws_wallet.json")) == [
        BalanceUpdate(
            exchange="bybit",
            market="unified",
            asset="BTC",
            ts=datetime(2023, 11, 15, 7, 52, 2, 104000, tzinfo=UTC),
            total=Decimal("0.00102964"),
            locked=Decimal(0),
        )
    ]


# --------------------------------------------------------------------------------------------
# Events: the recorded corpus (nautilus_trader fixtures)


def linear_order(**kw: Any) -> OrderUpdate:
    fields: dict[str, Any] = {
        "exchange": "bybit",
        "market": "linear",
        "symbol": "BTC/USDT:USDT",
        "side": OrderSide.BUY,
        "order_type": OrderType.LIMIT,
        "time_in_force": TimeInForce.GTC,
        "status": OrderStatus.NEW,
        "price": None,
        "qty": Decimal("0.100"),
        "filled_qty": Decimal(0),
        "avg_price": None,
        "ts": at(1672364262457),
        "position_side": PositionSide.BOTH,
        "venue_status": "Untriggered",
        "venue_type": "Stop",
    }
    fields.update(kw)
    return OrderUpdate(**fields)


CONDITIONAL = {
    # file: (client id, exchange id, side, type, price, qty, trigger, reduce only, venue type)
    "nautilus-rs__ws_account_order_buy_stop_market.json": (
        "test-client-buy-stop-market-001",
        "test-buy-stop-market-001",
        OrderSide.BUY,
        OrderType.MARKET,
        None,
        "0.100",
        "55000.00",
        False,
        "Stop",
    ),
    "nautilus-rs__ws_account_order_limit_if_touched.json": (
        "test-client-lit-001",
        "test-lit-001",
        OrderSide.BUY,
        OrderType.LIMIT,
        "55500.00",
        "0.100",
        "55000.00",
        False,
        "Stop",
    ),
    "nautilus-rs__ws_account_order_market_if_touched.json": (
        "test-client-mit-001",
        "test-mit-001",
        OrderSide.BUY,
        OrderType.MARKET,
        None,
        "0.100",
        "55000.00",
        False,
        "Stop",
    ),
    "nautilus-rs__ws_account_order_sell_market_if_touched.json": (
        "test-client-sell-mit-001",
        "test-sell-mit-001",
        OrderSide.SELL,
        OrderType.MARKET,
        None,
        "0.100",
        "55000.00",
        False,
        "Stop",
    ),
    "nautilus-rs__ws_account_order_stop_limit.json": (
        "test-client-stop-limit-001",
        "test-stop-limit-001",
        OrderSide.SELL,
        OrderType.LIMIT,
        "44500.00",
        "0.100",
        "45000.00",
        False,
        "Stop",
    ),
    "nautilus-rs__ws_account_order_stop_loss.json": (
        "test-client-sl-001",
        "test-stop-loss-001",
        OrderSide.SELL,
        OrderType.MARKET,
        None,
        "0.500",
        "48000.00",
        True,
        "StopLoss",
    ),
    "nautilus-rs__ws_account_order_stop_market.json": (
        "test-client-stop-market-001",
        "test-stop-market-001",
        OrderSide.SELL,
        OrderType.MARKET,
        None,
        "0.100",
        "45000.00",
        False,
        "Stop",
    ),
    "nautilus-rs__ws_account_order_take_profit.json": (
        "test-client-tp-001",
        "test-take-profit-001",
        OrderSide.SELL,
        OrderType.MARKET,
        None,
        "0.500",
        "55000.00",
        True,
        "TakeProfit",
    ),
}


@pytest.mark.parametrize("name", sorted(CONDITIONAL))
def test_untriggered_conditional_orders_are_open_with_a_trigger(
    handler: UserStreamHandler, name: str
) -> None:
    cid, oid, side, otype, price, qty, trigger, reduce_only, vtype = CONDITIONAL[name]
    assert handler.on_frame(recorded(name)) == [
        linear_order(
            client_order_id=cid,
            exchange_order_id=oid,
            side=side,
            order_type=otype,
            price=None if price is None else Decimal(price),
            qty=Decimal(qty),
            trigger_price=Decimal(trigger),
            reduce_only=reduce_only,
            venue_type=vtype,
        )
    ]


def test_recorded_cancelled_order(handler: UserStreamHandler) -> None:
    assert handler.on_frame(recorded("nautilus-rs__ws_account_order.json")) == [
        linear_order(
            client_order_id="client-1",
            exchange_order_id="abcdef123456",
            status=OrderStatus.CANCELED,
            price=Decimal(30000),
            qty=Decimal("0.010"),
            ts=at(1700000005000),
            venue_status="Cancelled",
            venue_type="StopLoss",
        )
    ]


def test_recorded_filled_order(handler: UserStreamHandler) -> None:
    assert handler.on_frame(recorded("nautilus-rs__ws_account_order_filled.json")) == [
        linear_order(
            client_order_id="test-client-order-001",
            exchange_order_id="5cf98598-39a7-459e-97bf-76ca765ee020",
            status=OrderStatus.FILLED,
            price=Decimal("30000.50"),
            filled_qty=Decimal("0.100"),
            avg_price=Decimal("30000.50"),
            trigger_price=Decimal("29500.00"),
            venue_status="Filled",
        )
    ]


def test_spot_rejected_after_a_partial_fill_is_canceled(handler: UserStreamHandler) -> None:
    (update,) = handler.on_frame(
        recorded("nautilus-rs__ws_account_order_partially_filled_rejected.json")
    )
    assert update == OrderUpdate(
        exchange="bybit",
        market="spot",
        symbol="APEX/USDT",
        client_order_id="O-20251001-164609-APEX-000-49",
        exchange_order_id="5cf98598-39a7-459e-97bf-76ca765ee021",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        status=OrderStatus.CANCELED,
        price=Decimal("1.500"),
        qty=Decimal("100.0"),
        filled_qty=Decimal("50.0"),
        avg_price=Decimal("1.500"),
        ts=at(1672364262457),
        venue_status="Rejected",
        venue_type="Limit",
    )
    assert update.position_side is None  # spot has no positions


def test_recorded_executions(handler: UserStreamHandler) -> None:
    (trade,) = handler.on_frame(recorded("nautilus-rs__ws_account_execution.json"))
    assert trade.client_order_id == "test-order-link-001"
    # No feeCurrency in this recording: a linear contract's fee is in its settle coin.
    assert (trade.fee, trade.fee_asset) == (Decimal("26.3725275"), "USDT")
    (adl,) = handler.on_frame(recorded("nautilus-rs__ws_account_execution_adl.json"))
    assert adl == Fill(
        exchange="bybit",
        market="linear",
        symbol="BTC/USDT:USDT",
        trade_id="0ab1bdf7-4219-438b-b30a-32ec863018f8",
        exchange_order_id="9aac161b-8ed6-450d-9cab-c5cc67c21785",
        client_order_id=None,
        side=OrderSide.SELL,
        price=Decimal("95850.0"),
        qty=Decimal("0.5"),
        fee=Decimal(0),
        fee_asset="USDT",
        is_maker=False,
        ts=at(1746270400398),
        seq=140612148849383,
    )
    (xrp,) = handler.on_frame(recorded("nautilus-py__private_ws_execution.json"))
    assert (xrp.symbol, xrp.price, xrp.qty, xrp.fee) == (
        "XRP/USDT:USDT",
        Decimal("0.3374"),
        Decimal(25),
        Decimal("0.005061"),
    )
    assert xrp.ts == datetime(2022, 12, 30, 1, 36, 14, 443000, tzinfo=UTC)


def test_fast_executions_are_ignored_not_counted_as_fills(handler: UserStreamHandler) -> None:
    for name in (
        "nautilus-rs__ws_account_execution_fast.json",
        "nautilus-rs__ws_account_execution_fast_envelope_id.json",
    ):
        assert handler.on_frame(recorded(name)) == []
    assert (handler.ignored, handler.malformed) == (2, 0)


def test_recorded_positions(handler: UserStreamHandler) -> None:
    expected_short = PositionUpdate(
        exchange="bybit",
        market="linear",
        symbol="ETH/USDT:USDT",
        position_side=PositionSide.BOTH,
        qty=Decimal("-0.01"),
        ts=at(1762199125472),
        entry_price=Decimal("3641.075"),
        unrealized_pnl=Decimal("-0.00255"),
        realized_pnl=Decimal("-25.06579337"),
        leverage=Decimal(30),
        mark_price=Decimal("3641.33"),
        liquidation_price=Decimal("51764.83003276"),
        seq=325852190774,
    )
    assert handler.on_frame(recorded("nautilus-rs__ws_account_position.json")) == [expected_short]
    assert handler.on_frame(recorded("nautilus-rs__ws_account_position_short.json")) == [
        expected_short
    ]
    (long,) = handler.on_frame(recorded("nautilus-py__private_ws_position.json"))
    assert (long.symbol, long.qty, long.entry_price, long.unrealized_pnl) == (
        "XRP/USDT:USDT",
        Decimal(75),
        Decimal("0.3615"),
        Decimal("-1.8075"),
    )
    assert long.liquidation_price is None  # "" in the recording


def test_recorded_wallets(handler: UserStreamHandler) -> None:
    usdc, btc, usdt = handler.on_frame(recorded("nautilus-py__private_ws_wallet.json"))
    ts = at(1690873065683)
    assert usdt == BalanceUpdate(
        exchange="bybit",
        market="unified",
        asset="USDT",
        ts=ts,
        total=Decimal("106.03036732"),
        locked=Decimal(0),
    )
    assert (usdc.asset, btc.asset, usdc.total, btc.total) == ("USDC", "BTC", 0, 0)
    btc2, usdt2 = handler.on_frame(recorded("nautilus-rs__ws_account_wallet.json"))
    assert (btc2.asset, btc2.total, btc2.locked) == ("BTC", Decimal("0.00102964"), None)
    assert (usdt2.asset, usdt2.total) == ("USDT", Decimal("9647.75537647"))
    for name in (
        "nautilus-rs__ws_account_wallet_locked_exceeds_total.json",
        "nautilus-rs__ws_account_wallet_small_order.json",
    ):
        (only,) = handler.on_frame(recorded(name))
        assert only.asset == "USDT" and only.ts == at(1762960669000)


def test_every_private_corpus_frame_parses_without_malformed(handler: UserStreamHandler) -> None:
    folder = require_shared(CORPUS / "bybit" / "ws")
    names = sorted(
        p.name
        for p in folder.glob("*.json")
        if "private_ws" in p.name or "ws_account_" in p.name or "ws_auth" in p.name
    )
    assert len(names) >= 25
    for name in names:
        if name == "nautilus-rs__ws_account_position_with_open_time.json":
            continue  # a bare REST position row, not a stream frame
        handler.on_frame((folder / name).read_bytes())
    assert handler.malformed == 0 and handler.unmapped == 0


# --------------------------------------------------------------------------------------------
# Mapping rules not covered by recordings


def order_item(**kw: Any) -> dict[str, Any]:
    item = {
        "category": "linear",
        "symbol": "BTCUSDT",
        "orderId": "o-1",
        "orderLinkId": "c-1",
        "side": "Buy",
        "orderType": "Limit",
        "price": "60000",
        "qty": "0.010",
        "timeInForce": "GTC",
        "orderStatus": "New",
        "cumExecQty": "0",
        "avgPrice": "",
        "createdTime": "1700000000000",
        "updatedTime": "1700000000100",
    }
    item.update(kw)
    return item


def order_frame(*items: dict[str, Any], topic: str = "order") -> bytes:
    return frame({"id": "1", "topic": topic, "creationTime": 1700000000200, "data": list(items)})


@pytest.mark.parametrize(
    ("venue", "status"),
    [
        ("New", OrderStatus.NEW),
        ("PartiallyFilled", OrderStatus.PARTIALLY_FILLED),
        ("Untriggered", OrderStatus.NEW),
        ("Triggered", OrderStatus.NEW),
        ("Filled", OrderStatus.FILLED),
        ("Cancelled", OrderStatus.CANCELED),
        ("PartiallyFilledCanceled", OrderStatus.CANCELED),
        ("Deactivated", OrderStatus.CANCELED),
        ("Rejected", OrderStatus.REJECTED),
    ],
)
def test_status_mapping(handler: UserStreamHandler, venue: str, status: OrderStatus) -> None:
    (update,) = handler.on_frame(order_frame(order_item(orderStatus=venue)))
    assert (update.status, update.venue_status) == (status, venue)


def test_spot_market_buy_is_sized_in_quote_unless_base_unit(handler: UserStreamHandler) -> None:
    quote, base, sell = handler.on_frame(
        order_frame(
            order_item(category="spot", orderType="Market", qty="100", price="0"),
            order_item(category="spot", orderType="Market", qty="0.002", marketUnit="baseCoin"),
            order_item(category="spot", orderType="Market", side="Sell", qty="0.002"),
        )
    )
    assert (quote.qty, quote.quote_qty, quote.price) == (0, Decimal(100), None)
    assert (base.qty, base.quote_qty) == (Decimal("0.002"), None)
    assert (sell.qty, sell.quote_qty) == (Decimal("0.002"), None)
    assert quote.symbol == "BTC/USDT" and quote.market == "spot"


def test_post_only_hedge_side_and_categorised_topic(handler: UserStreamHandler) -> None:
    item = order_item(timeInForce="PostOnly", positionIdx=2, category="")
    (update,) = handler.on_frame(order_frame(item, topic="order.linear"))
    assert update.post_only and update.time_in_force is TimeInForce.POST_ONLY
    assert update.position_side is PositionSide.SHORT and update.market == "linear"


def test_funding_execution_is_not_a_fill(handler: UserStreamHandler) -> None:
    funding = {
        "category": "linear",
        "symbol": "BTCUSDT",
        "orderId": "",
        "orderLinkId": "",
        "side": "Buy",
        "execId": "f-1",
        "execPrice": "60000",
        "execQty": "0.5",
        "execType": "Funding",
        "execFee": "0.3",
        "execTime": "1700000000000",
    }
    assert handler.on_frame(order_frame(funding, topic="execution")) == []
    assert handler.ignored == 1


def test_unknown_symbol_is_counted_not_guessed(handler: UserStreamHandler) -> None:
    assert handler.on_frame(order_frame(order_item(symbol="DOGEUSDT"))) == []
    assert handler.on_frame(order_frame(order_item(symbol="DOGEUSDT"))) == []
    assert (handler.unmapped, handler.malformed) == (2, 0)


def test_one_bad_item_does_not_drop_its_neighbours(handler: UserStreamHandler) -> None:
    good = order_item(orderId="good")
    bad = order_item(orderId="bad", side="Sideways")
    events = handler.on_frame(order_frame(bad, good))
    assert [e.exchange_order_id for e in events] == ["good"]  # type: ignore[union-attr]
    assert handler.malformed == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1,2,3]",
        b'{"topic":"order","data":"nope"}',
        b'{"topic":"order","creationTime":1,"data":[{"symbol":1}]}',
        b'{"topic":"wallet","creationTime":1,"data":[{"coin":[{"coin":"BTC","walletBalance":"x"}]}]}',
        b'{"hello":"world"}',
    ],
)
def test_malformed_frames_are_counted_never_raised(handler: UserStreamHandler, raw: bytes) -> None:
    assert handler.on_frame(raw) == []
    assert handler.malformed == 1


def test_malformed_is_logged_once_in_n(handler: UserStreamHandler, monkeypatch: Any) -> None:
    logged: list[Any] = []
    monkeypatch.setattr(handler._malformed._log, "warning", lambda *a: logged.append(a))
    for _ in range(us.LOG_EVERY + 1):
        handler.on_frame(b"garbage")
    assert handler.malformed == us.LOG_EVERY + 1
    assert len(logged) == 2  # the first, then one in LOG_EVERY


def test_rejects_instruments_of_another_venue() -> None:
    other = instrument(Exchange.BINANCE, Market.SPOT, "BTC", "USDT", tick="0.01", step="0.001")
    with pytest.raises(ValueError, match="not bybit"):
        UserStreamHandler([other])


def test_payload_folder_has_every_private_topic() -> None:
    folder: Path = require_shared(REFERENCE / "payloads")
    for topic in ("order", "execution", "position", "wallet"):
        assert json.loads((folder / f"bybit_ws_{topic}.json").read_text())["topic"] == topic
