"""Binance user-data streams (exconn.venues.binance.user_stream): the spot WS API subscription,
the USD-M listenKey, and every user-data payload of the reference and corpus parsed into
exconn's events, exactly."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from exconn.errors import AuthError, ClockSkew, MalformedMessage
from exconn.messages import BalanceUpdate, Fill, OrderUpdate, PositionSide, PositionUpdate
from exconn.model.enums import Exchange, Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.venues.binance import user_stream as us
from exconn.venues.binance.user_stream import UserStreamHandler
from exconn.venues.keys import Credentials
from tests.conftest import CORPUS, REFERENCE, require_shared
from tests.unit.stream_support import instrument

# binance.md §2.3 / vectors.md B6: the docs' HMAC key and secret; the subscribe request signs
# "apiKey=...&timestamp=..." exactly like the session.logon example, so B6's signature applies.
DOCS_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOCS_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
B6 = "1cf54395b336b0a9727ef27d5d98987962bc47aca6e13fe978612d0adee066ed"
# vectors.md §3: the public RFC 8032 §7.1 TEST 1 key.
RFC8032_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n"
)
LISTEN_KEY = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def spot_handler() -> UserStreamHandler:
    pairs = (("ETH", "BTC"), ("ETH", "USDT"), ("BTC", "USDT"), ("BTC", "USD"))
    return UserStreamHandler(
        Market.SPOT,
        [
            instrument(Exchange.BINANCE, Market.SPOT, b, q, tick="0.00000001", step="0.00001")
            for b, q in pairs
        ],
    )


def usdm_handler() -> UserStreamHandler:
    return UserStreamHandler(
        Market.LINEAR,
        [
            instrument(Exchange.BINANCE, Market.LINEAR, b, "USDT", tick="0.01", step="0.001")
            for b in ("BTC", "ETH")
        ],
    )


@pytest.fixture
def spot() -> UserStreamHandler:
    return spot_handler()


@pytest.fixture
def usdm() -> UserStreamHandler:
    return usdm_handler()


def payload(name: str) -> bytes:
    return (require_shared(REFERENCE / "payloads") / name).read_bytes()


def recorded(folder: str, name: str) -> bytes:
    return (require_shared(CORPUS / "binance" / folder / "ws") / name).read_bytes()


def frame(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# Spot: the signed subscription request (binance.md §9.1)


def test_subscribe_request_hmac_matches_the_docs_vector() -> None:
    creds = Credentials(DOCS_KEY, secret=DOCS_SECRET)
    sent = json.loads(us.subscribe_request(creds, 1649729878532, "r-1"))
    assert sent == {
        "method": "userDataStream.subscribe.signature",
        "id": "r-1",
        "params": {"timestamp": 1649729878532, "apiKey": DOCS_KEY, "signature": B6},
    }


def test_subscribe_request_ed25519_and_rsa_sign_the_sorted_params() -> None:
    payload_text = b"apiKey=KEY&recvWindow=5000&timestamp=1649729878532"
    ed = Credentials("KEY", private_key_pem=RFC8032_PEM)
    sent = json.loads(us.subscribe_request(ed, 1649729878532, "r-2", recv_window_ms=5000))
    assert sent["params"]["recvWindow"] == 5000
    public = serialization.load_pem_private_key(RFC8032_PEM.encode(), None).public_key()
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(base64.b64decode(sent["params"]["signature"]), payload_text)

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    sent = json.loads(
        us.subscribe_request(
            Credentials("KEY", private_key_pem=pem), 1649729878532, "r-3", recv_window_ms=5000
        )
    )
    key.public_key().verify(
        base64.b64decode(sent["params"]["signature"]),
        payload_text,
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_open_frames_subscribe_and_reply_sets_the_subscription(spot: UserStreamHandler) -> None:
    creds = Credentials(DOCS_KEY, secret=DOCS_SECRET)
    (request,) = spot.open_frames(creds, 1649729878532)
    sent = json.loads(request)
    assert sent["method"] == us.SUBSCRIBE_METHOD and sent["params"]["signature"] == B6
    assert not spot.subscribed and not spot.authenticated
    reply = frame({"id": sent["id"], "status": 200, "result": {"subscriptionId": 3}})
    assert spot.on_frame(reply) == []
    assert spot.subscribed and spot.authenticated and spot.subscription_id == 3
    assert spot.auth_error is None and spot.error is None
    assert spot.ping_frame() is None and us.PING_INTERVAL_S is None
    (close,) = spot.close_frames()
    unsub = json.loads(close)
    assert unsub["method"] == "userDataStream.unsubscribe"
    assert unsub["params"] == {"subscriptionId": 3}
    spot.on_frame(frame({"id": unsub["id"], "status": 200, "result": {}}))
    assert not spot.subscribed and spot.subscription_id is None


def test_the_docs_reply_to_a_subscribe(spot: UserStreamHandler) -> None:
    (request,) = spot.open_frames(Credentials(DOCS_KEY, secret=DOCS_SECRET), 1)
    reply = json.loads(payload("binance_spot_wsapi_userDataStream_subscribe_response.json"))
    # The docs' reply as it answers our request: only the request id differs.
    reply["id"] = json.loads(request)["id"]
    spot.on_frame(frame(reply))
    assert spot.subscribed and spot.subscription_id == 0


def _subscribe_reply(spot: UserStreamHandler, status: int, code: int, msg: str) -> None:
    (request,) = spot.open_frames(Credentials(DOCS_KEY, secret=DOCS_SECRET), 1)
    request_id = json.loads(request)["id"]
    spot.on_frame(frame({"id": request_id, "status": status, "error": {"code": code, "msg": msg}}))


def test_bad_signature_is_an_auth_error_with_code_and_message(spot: UserStreamHandler) -> None:
    _subscribe_reply(spot, 400, -1022, "Signature for this request is not valid.")
    err = spot.auth_error
    assert isinstance(err, AuthError) and spot.error is err
    assert (err.exchange, err.code) == ("binance", -1022)
    assert err.venue_message == "Signature for this request is not valid."
    assert not spot.subscribed and not spot.authenticated
    assert DOCS_SECRET not in repr(err) and B6 not in str(err)


def test_stale_timestamp_is_clock_skew(spot: UserStreamHandler) -> None:
    _subscribe_reply(spot, 400, -1021, "Timestamp for this request is outside of the recvWindow.")
    assert isinstance(spot.error, ClockSkew) and spot.auth_error is None


def test_already_subscribed_counts_as_subscribed(spot: UserStreamHandler) -> None:
    _subscribe_reply(spot, 400, -2035, "User Data Stream subscription already active.")
    assert spot.subscribed and spot.error is None and spot.subscription_id is None


def test_key_revoked_mid_session(spot: UserStreamHandler) -> None:
    spot.on_frame(payload("binance_spot_wsapi_session_revoked_2015.json"))
    assert isinstance(spot.auth_error, AuthError) and spot.auth_error.code == -2015
    assert not spot.subscribed


def test_replies_to_other_requests_are_not_its_business(spot: UserStreamHandler) -> None:
    for name in ("binance_spot_wsapi_error_response.json", "binance_spot_wsapi_ip_banned_418.json"):
        assert spot.on_frame(payload(name)) == []
    assert spot.error is None and spot.malformed == 0


def test_event_stream_terminated_ends_the_subscription(spot: UserStreamHandler) -> None:
    (request,) = spot.open_frames(Credentials(DOCS_KEY, secret=DOCS_SECRET), 1)
    spot.on_frame(
        frame({"id": json.loads(request)["id"], "status": 200, "result": {"subscriptionId": 0}})
    )
    assert spot.subscribed
    assert spot.on_frame(payload("binance_spot_user_eventStreamTerminated.json")) == []
    assert not spot.subscribed and spot.subscription_id is None and spot.auth_error is None


def test_events_of_another_subscription_are_ignored(spot: UserStreamHandler) -> None:
    (request,) = spot.open_frames(Credentials(DOCS_KEY, secret=DOCS_SECRET), 1)
    spot.on_frame(
        frame({"id": json.loads(request)["id"], "status": 200, "result": {"subscriptionId": 1}})
    )
    assert spot.on_frame(payload("binance_spot_user_balanceUpdate.json")) == []  # id 0
    assert spot.ignored == 1


def test_disconnect_resets_the_session(spot: UserStreamHandler) -> None:
    spot.authenticated = spot.subscribed = True
    spot.subscription_id = 4
    spot.on_disconnect()
    assert (spot.authenticated, spot.subscribed, spot.subscription_id) == (False, False, None)


# --------------------------------------------------------------------------------------------
# USD-M: listenKey (binance.md §9.3)


def test_listen_key_constants() -> None:
    assert us.LISTEN_KEY_VALIDITY_S == 3600
    assert us.LISTEN_KEY_KEEPALIVE_S == 1800 < us.LISTEN_KEY_VALIDITY_S


def test_listen_key_requests_are_keyed_and_unsigned() -> None:
    creds = Credentials("my-api-key-123456", secret="s3cret")
    calls = [
        us.create_listen_key(creds),
        us.keepalive_listen_key(creds),
        us.close_listen_key(creds),
    ]
    assert [(c.method, c.path) for c in calls] == [
        ("POST", "/fapi/v1/listenKey"),
        ("PUT", "/fapi/v1/listenKey"),
        ("DELETE", "/fapi/v1/listenKey"),
    ]
    for call in calls:
        assert call.headers == {"X-MBX-APIKEY": "my-api-key-123456"}
        assert dict(call.params) == {}
        assert "my-api-key" not in repr(call) and "s3cret" not in repr(call)


def test_listen_key_lifecycle(usdm: UserStreamHandler) -> None:
    assert usdm.needs_listen_key and usdm.listen_key is None
    with pytest.raises(ValueError, match="listenKey"):
        usdm.stream_url("wss://fstream.binance.com")
    usdm.on_listen_key(frame({"listenKey": LISTEN_KEY}))
    assert not usdm.needs_listen_key and usdm.listen_key == LISTEN_KEY
    assert LISTEN_KEY not in repr(usdm)
    expected = f"wss://fstream.binance.com/private/ws?listenKey={LISTEN_KEY}"
    assert usdm.stream_url("wss://fstream.binance.com") == expected
    assert usdm.stream_url("wss://fstream.binance.com/public/") == expected
    assert usdm.open_frames(Credentials("k", secret="s"), 1) == []
    assert usdm.authenticated and usdm.subscribed
    assert usdm.close_frames() == [] and usdm.ping_frame() is None
    expired = frame({"e": "listenKeyExpired", "E": 1699596037418, "listenKey": LISTEN_KEY})
    assert usdm.on_frame(expired) == []
    assert usdm.needs_listen_key and not usdm.subscribed
    usdm.on_listen_key(frame({"listenKey": "another"}))
    usdm.open_frames(Credentials("k", secret="s"), 1)
    assert usdm.subscribed
    usdm.listen_key_lost()  # a keepalive answered -1125
    assert usdm.needs_listen_key and not usdm.subscribed and us.LISTEN_KEY_UNKNOWN == -1125


def test_listen_key_reply_shapes(usdm: UserStreamHandler) -> None:
    usdm.on_listen_key(payload("binance_spot_legacy_rest_listenKey_create.json"))
    assert usdm.listen_key and not usdm.needs_listen_key
    with pytest.raises(MalformedMessage):
        usdm.on_listen_key(b'{"code":-1125,"msg":"This listenKey does not exist."}')


def test_listen_key_is_kept_out_of_malformed_logs(
    usdm: UserStreamHandler, monkeypatch: Any
) -> None:
    usdm.on_listen_key(frame({"listenKey": LISTEN_KEY}))
    logged: list[Any] = []
    monkeypatch.setattr(usdm._malformed._log, "warning", lambda *a: logged.append(a))
    usdm.on_frame(frame({"stream": LISTEN_KEY, "data": {"e": "ORDER_TRADE_UPDATE"}}))
    assert usdm.malformed == 1 and logged
    assert LISTEN_KEY not in repr(logged) and "<listenKey>" in repr(logged)


def test_spot_has_no_stream_url(spot: UserStreamHandler) -> None:
    with pytest.raises(ValueError, match="WebSocket API"):
        spot.stream_url("wss://stream.binance.com:9443")


# --------------------------------------------------------------------------------------------
# Spot events: reference payloads


DOCS_NEW = OrderUpdate(
    exchange="binance",
    market="spot",
    symbol="ETH/BTC",
    client_order_id="mUvoqJxFIILMdfAW5iGSOW",
    exchange_order_id="4293153",
    side=OrderSide.BUY,
    order_type=OrderType.LIMIT,
    time_in_force=TimeInForce.GTC,
    status=OrderStatus.NEW,
    price=Decimal("0.10264410"),
    qty=Decimal("1.00000000"),
    filled_qty=Decimal(0),
    avg_price=None,
    ts=datetime(2017, 7, 7, 5, 34, 18, 657000, tzinfo=UTC),
    venue_status="NEW",
    venue_type="LIMIT",
    seq=8641984,
)


def test_execution_report_new(spot: UserStreamHandler) -> None:
    assert spot.on_frame(payload("binance_spot_user_executionReport.json")) == [DOCS_NEW]
    # The legacy (listenKey) form is the same event, unwrapped.
    assert spot.on_frame(payload("binance_spot_legacy_user_executionReport_unwrapped.json")) == [
        DOCS_NEW
    ]


def test_outbound_account_position(spot: UserStreamHandler) -> None:
    assert spot.on_frame(payload("binance_spot_user_outboundAccountPosition.json")) == [
        BalanceUpdate(
            exchange="binance",
            market="spot",
            asset="ETH",
            ts=at(1564034571073),  # u: the account's last update
            free=Decimal("10000.000000"),
            locked=Decimal(0),
            total=Decimal("10000.000000"),
        )
    ]


def test_balance_update_is_a_delta(spot: UserStreamHandler) -> None:
    assert spot.on_frame(payload("binance_spot_user_balanceUpdate.json")) == [
        BalanceUpdate(
            exchange="binance",
            market="spot",
            asset="BTC",
            ts=at(1573200697068),
            delta=Decimal("100.00000000"),
        )
    ]


def test_list_status_is_ignored(spot: UserStreamHandler) -> None:
    assert spot.on_frame(payload("binance_spot_user_listStatus.json")) == []
    assert (spot.ignored, spot.malformed) == (1, 0)


def test_legacy_listen_key_expired_ends_a_spot_subscription(spot: UserStreamHandler) -> None:
    spot.subscribed = True
    assert spot.on_frame(payload("binance_spot_legacy_user_listenKeyExpired.json")) == []
    assert not spot.subscribed


# --------------------------------------------------------------------------------------------
# Spot events: the corpus (nautilus_trader fixtures; combined-stream or WS API wrapped)


def spot_order(**kw: Any) -> OrderUpdate:
    fields: dict[str, Any] = {
        "exchange": "binance",
        "market": "spot",
        "symbol": "ETH/USDT",
        "side": OrderSide.BUY,
        "order_type": OrderType.LIMIT,
        "time_in_force": TimeInForce.GTC,
        "status": OrderStatus.NEW,
        "price": Decimal("2500.00000000"),
        "qty": Decimal("1.00000000"),
        "filled_qty": Decimal(0),
        "avg_price": None,
        "ts": at(1759347763167),
        "venue_type": "LIMIT",
        "seq": 4644480641,
    }
    fields.update(kw)
    fields.setdefault("venue_status", fields["status"].name)
    return OrderUpdate(**fields)


def test_execution_report_trade_gives_the_order_and_its_fill(spot: UserStreamHandler) -> None:
    name = "nautilus-py__ws_messages_ws_spot_execution_report_trade.json"
    assert spot.on_frame(recorded("spot", name)) == [
        spot_order(
            client_order_id="O-12345-test-trade",
            exchange_order_id="1234567890",
            status=OrderStatus.PARTIALLY_FILLED,
            filled_qty=Decimal("0.50000000"),
            avg_price=Decimal("2499.5"),  # Z / z = 1249.75 / 0.5
        ),
        Fill(
            exchange="binance",
            market="spot",
            symbol="ETH/USDT",
            trade_id="98765432",
            exchange_order_id="1234567890",
            client_order_id="O-12345-test-trade",
            side=OrderSide.BUY,
            price=Decimal("2499.50000000"),
            qty=Decimal("0.50000000"),
            fee=Decimal("0.00050000"),
            fee_asset="ETH",
            is_maker=True,
            ts=at(1759347763167),
            seq=4644480641,
        ),
    ]


def test_binance_us_fill(spot: UserStreamHandler) -> None:
    name = "nautilus-py__ws_messages_ws_spot_execution_report_binance_us.json"
    update, fill = spot.on_frame(recorded("spot", name))
    assert isinstance(update, OrderUpdate) and isinstance(fill, Fill)
    assert (update.symbol, update.status, update.filled_qty) == (
        "BTC/USD",
        OrderStatus.FILLED,
        Decimal("0.00042000"),
    )
    assert update.avg_price == Decimal("117290.77")  # 49.26212340 / 0.00042
    assert (fill.trade_id, fill.price, fill.qty, fill.fee, fill.fee_asset, fill.is_maker) == (
        "88685053",
        Decimal("117290.77"),
        Decimal("0.00042"),
        Decimal("0.00492621"),
        "USD",
        False,
    )


# file -> (symbol, status, venue status, order type, tif, qty, filled, fill qty or None)
SPOT_REPORTS: dict[str, tuple[Any, ...]] = {
    "canceled": ("ETH/USDT", OrderStatus.CANCELED, "CANCELED", "LIMIT", "GTC", "0.5", "0.1", None),
    "pending_cancel": (
        "ETH/USDT",
        OrderStatus.PENDING_CANCEL,
        "PENDING_CANCEL",
        "LIMIT",
        "GTC",
        "0.5",
        "0.1",
        None,
    ),
    "expired": ("BTC/USDT", OrderStatus.EXPIRED, "EXPIRED", "LIMIT", None, "0.01", "0", None),
    "new": ("ETH/USDT", OrderStatus.NEW, "NEW", "LIMIT", "GTC", "1", "0", None),
    "new_price_match": ("ETH/USDT", OrderStatus.NEW, "NEW", "LIMIT", "GTC", "1", "0", None),
    "new_limit_if_touched_price_match": (
        "ETH/USDT",
        OrderStatus.NEW,
        "NEW",
        "TAKE_PROFIT_LIMIT",
        "GTC",
        "1",
        "0",
        None,
    ),
    "new_stop_limit_price_match": (
        "ETH/USDT",
        OrderStatus.NEW,
        "NEW",
        "STOP_LOSS_LIMIT",
        "GTC",
        "1",
        "0",
        None,
    ),
    "rejected": ("BTC/USDT", OrderStatus.REJECTED, "REJECTED", "LIMIT", "post", "0.001", "0", None),
    "custom_client_id": (
        "ETH/USDT",
        OrderStatus.PARTIALLY_FILLED,
        "PARTIALLY_FILLED",
        "LIMIT",
        "GTC",
        "1",
        "0.5",
        "0.5",
    ),
    "empty_client_id": (
        "ETH/USDT",
        OrderStatus.PARTIALLY_FILLED,
        "PARTIALLY_FILLED",
        "LIMIT",
        "GTC",
        "1",
        "0.5",
        "0.5",
    ),
    "calculated": (
        "BTC/USDT",
        OrderStatus.FILLED,
        "FILLED",
        "LIMIT",
        "GTC",
        "0.01",
        "0.01",
        "0.01",
    ),
    "trade_l_zero_canceled": (
        "ETH/USDT",
        OrderStatus.CANCELED,
        "CANCELED",
        "LIMIT",
        "GTC",
        "0.001",
        "0",
        None,
    ),
    "trade_l_zero_expired": (
        "BTC/USDT",
        OrderStatus.EXPIRED,
        "EXPIRED",
        "LIMIT",
        None,
        "0.01",
        "0",
        None,
    ),
    "trade_l_zero_new": ("ETH/USDT", OrderStatus.NEW, "NEW", "LIMIT", "GTC", "1", "0", None),
    "trade_l_zero_partial": (
        "ETH/USDT",
        OrderStatus.PARTIALLY_FILLED,
        "PARTIALLY_FILLED",
        "LIMIT",
        "GTC",
        "1",
        "0.5",
        None,  # l = 0: nothing traded in this report
    ),
    "trade_prevention": (
        "ETH/USDT",
        OrderStatus.EXPIRED,
        "EXPIRED_IN_MATCH",
        "LIMIT",
        "GTC",
        "1",
        "0",
        None,  # self-trade prevention is not a trade
    ),
}
TIF = {"GTC": TimeInForce.GTC, "post": TimeInForce.POST_ONLY, None: None}


@pytest.mark.parametrize("case", sorted(SPOT_REPORTS))
def test_spot_execution_reports(spot: UserStreamHandler, case: str) -> None:
    symbol, status, venue_status, vtype, tif, qty, filled, fill_qty = SPOT_REPORTS[case]
    events = spot.on_frame(
        recorded("spot", f"nautilus-py__ws_messages_ws_spot_execution_report_{case}.json")
    )
    update = events[0]
    assert isinstance(update, OrderUpdate)
    assert (update.symbol, update.status, update.venue_status, update.venue_type) == (
        symbol,
        status,
        venue_status,
        vtype,
    )
    assert (update.time_in_force, update.qty, update.filled_qty) == (
        TIF[tif],
        Decimal(qty),
        Decimal(filled),
    )
    assert update.ts == at(1759347763167)
    fills = events[1:]
    assert [f.qty for f in fills] == ([] if fill_qty is None else [Decimal(fill_qty)])
    assert spot.malformed == 0


def test_spot_stop_orders_carry_their_trigger(spot: UserStreamHandler) -> None:
    name = "nautilus-py__ws_messages_ws_spot_execution_report_new_stop_limit_price_match.json"
    (update,) = spot.on_frame(recorded("spot", name))
    assert (update.order_type, update.price, update.trigger_price) == (
        OrderType.LIMIT,
        Decimal("2405.75"),
        Decimal(2400),
    )


def test_spot_reject_reason_and_empty_client_id(spot: UserStreamHandler) -> None:
    (rejected,) = spot.on_frame(
        recorded("spot", "nautilus-py__ws_messages_ws_spot_execution_report_rejected.json")
    )
    assert rejected.reject_reason == "GTX_ORDER_REJECT" and rejected.post_only
    empty, fill = spot.on_frame(
        recorded("spot", "nautilus-py__ws_messages_ws_spot_execution_report_empty_client_id.json")
    )
    assert empty.client_order_id is None and fill.client_order_id is None


def test_a_trade_without_a_price_is_not_a_fill(spot: UserStreamHandler) -> None:
    # x=TRADE, l=0.001, but L=0: the order update goes out, no fill is invented.
    name = "nautilus-py__ws_messages_ws_spot_execution_report_trade_l_zero.json"
    (update,) = spot.on_frame(recorded("spot", name))
    assert update.status is OrderStatus.FILLED and update.filled_qty == Decimal("0.001")
    assert spot.malformed == 1


def test_corpus_lifecycle_new_trade_canceled(spot: UserStreamHandler) -> None:
    (new,) = spot.on_frame(recorded("spot", "nautilus-rs__execution_report_new.json"))
    trade, fill = spot.on_frame(recorded("spot", "nautilus-rs__execution_report_trade.json"))
    (canceled,) = spot.on_frame(recorded("spot", "nautilus-rs__execution_report_canceled.json"))
    assert [e.status for e in (new, trade, canceled)] == [
        OrderStatus.NEW,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
    ]
    assert new.seq is None  # these recordings carry no execution id
    assert trade.avg_price == Decimal(2500) and trade.ts == at(1709654401000)
    assert fill == Fill(
        exchange="binance",
        market="spot",
        symbol="ETH/USDT",
        trade_id="98765432",
        exchange_order_id="12345678",
        client_order_id="x-TD67BGP9-T0000000000000",
        side=OrderSide.BUY,
        price=Decimal(2500),
        qty=Decimal(1),
        fee=Decimal("0.001"),
        fee_asset="ETH",
        is_maker=True,
        ts=at(1709654401000),
    )
    (stop,) = spot.on_frame(recorded("spot", "nautilus-rs__execution_report_stop_loss.json"))
    assert (stop.trigger_price, stop.venue_type) == (Decimal(2450), "STOP_LOSS_LIMIT")
    (wrapped,) = spot.on_frame(recorded("spot", "nautilus-rs__execution_report_wrapped.json"))
    assert wrapped == DOCS_NEW


def test_corpus_balances(spot: UserStreamHandler) -> None:
    events = spot.on_frame(recorded("spot", "nautilus-rs__account_position.json"))
    assert all(isinstance(e, BalanceUpdate) for e in events) and len(events) == 2
    for e in events:
        assert e.total == e.free + e.locked and e.ts == at(1709654400000)  # type: ignore[union-attr,operator]
    (delta,) = spot.on_frame(recorded("spot", "nautilus-rs__balance_update.json"))
    assert (delta.asset, delta.delta, delta.free) == ("BTC", Decimal("0.001"), None)
    for name in (
        "nautilus-rs__account_position_wrapped.json",
        "nautilus-rs__balance_update_wrapped.json",
    ):
        (event,) = spot.on_frame(recorded("spot", name))
        assert isinstance(event, BalanceUpdate)
    assert spot.on_frame(recorded("spot", "nautilus-rs__list_status_wrapped.json")) == []
    assert spot.malformed == 0


# --------------------------------------------------------------------------------------------
# USD-M events


def test_order_trade_update_new_trailing_stop(usdm: UserStreamHandler) -> None:
    assert usdm.on_frame(payload("binance_usdm_user_ORDER_TRADE_UPDATE_new.json")) == [
        OrderUpdate(
            exchange="binance",
            market="linear",
            symbol="BTC/USDT:USDT",
            client_order_id="TEST",
            exchange_order_id="8886774",
            side=OrderSide.BUY,
            order_type=OrderType.MARKET,
            time_in_force=TimeInForce.GTC,
            status=OrderStatus.NEW,
            price=None,
            qty=Decimal("0.001"),
            filled_qty=Decimal(0),
            avg_price=None,
            ts=datetime(2019, 9, 19, 7, 51, 5, 651000, tzinfo=UTC),
            position_side=PositionSide.LONG,
            trigger_price=Decimal("7103.04"),
            venue_status="NEW",
            venue_type="TRAILING_STOP_MARKET",
        )
    ]


def test_order_trade_update_trade_gives_the_order_and_its_fill(usdm: UserStreamHandler) -> None:
    ts = datetime(2019, 9, 19, 7, 51, 5, 651000, tzinfo=UTC)
    assert usdm.on_frame(payload("binance_usdm_user_ORDER_TRADE_UPDATE_trade.json")) == [
        OrderUpdate(
            exchange="binance",
            market="linear",
            symbol="BTC/USDT:USDT",
            client_order_id="TEST",
            exchange_order_id="8886774",
            side=OrderSide.BUY,
            order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.GTC,
            status=OrderStatus.PARTIALLY_FILLED,
            price=Decimal("7100.50"),
            qty=Decimal("0.001"),
            filled_qty=Decimal("0.001"),
            avg_price=Decimal("7100.50"),
            ts=ts,
            position_side=PositionSide.LONG,
            venue_status="PARTIALLY_FILLED",
            venue_type="LIMIT",
        ),
        Fill(
            exchange="binance",
            market="linear",
            symbol="BTC/USDT:USDT",
            trade_id="12345678",
            exchange_order_id="8886774",
            client_order_id="TEST",
            side=OrderSide.BUY,
            price=Decimal("7100.50"),
            qty=Decimal("0.001"),
            fee=Decimal("0.01"),
            fee_asset="USDT",
            is_maker=True,
            ts=ts,
        ),
    ]


def test_account_update_balances_and_hedge_positions(usdm: UserStreamHandler) -> None:
    ts = at(1564745798939)

    def position(side: PositionSide, qty: str, **kw: Any) -> PositionUpdate:
        return PositionUpdate(
            exchange="binance",
            market="linear",
            symbol="BTC/USDT:USDT",
            position_side=side,
            qty=Decimal(qty),
            ts=ts,
            margin_mode="isolated",
            **kw,
        )

    assert usdm.on_frame(payload("binance_usdm_user_ACCOUNT_UPDATE.json")) == [
        BalanceUpdate(
            exchange="binance",
            market="linear",
            asset="USDT",
            ts=ts,
            total=Decimal("122624.12345678"),
            delta=Decimal("50.12345678"),
            reason="ORDER",
        ),
        position(
            PositionSide.BOTH,
            "0",
            entry_price=None,
            unrealized_pnl=Decimal(0),
            realized_pnl=Decimal(200),
        ),
        position(
            PositionSide.LONG,
            "20",
            entry_price=Decimal("6563.6"),
            unrealized_pnl=Decimal("2850.21200"),
            realized_pnl=Decimal(0),
        ),
        position(
            PositionSide.SHORT,
            "-10",
            entry_price=Decimal("6563.8"),
            unrealized_pnl=Decimal("-1423.15600"),
            realized_pnl=Decimal("-45.04000000"),
        ),
    ]


def test_trade_lite_and_algo_update_are_ignored(usdm: UserStreamHandler) -> None:
    assert usdm.on_frame(payload("binance_usdm_user_TRADE_LITE.json")) == []
    assert usdm.on_frame(payload("binance_usdm_user_ALGO_UPDATE.json")) == []
    assert (usdm.ignored, usdm.malformed) == (2, 0)


# file -> (symbol, status, venue status, order type, position side, reduce only, fill qty)
USDM_UPDATES: dict[str, tuple[Any, ...]] = {
    "nautilus-rs__order_update_adl.json": (
        "BTC/USDT:USDT",
        OrderStatus.FILLED,  # NEW_ADL: read from the quantities (z == q)
        "NEW_ADL",
        OrderType.LIMIT,
        PositionSide.SHORT,
        True,
        "0.005",
    ),
    "nautilus-rs__order_update_insurance.json": (
        "BTC/USDT:USDT",
        OrderStatus.FILLED,
        "NEW_INSURANCE",
        OrderType.LIMIT,
        PositionSide.LONG,
        True,
        "0.020",
    ),
    "nautilus-rs__order_update_calculated.json": (
        "BTC/USDT:USDT",
        OrderStatus.FILLED,
        "FILLED",
        OrderType.LIMIT,
        PositionSide.LONG,
        True,
        "0.014",
    ),
    "nautilus-rs__order_update_calculated_pending.json": (
        "BTC/USDT:USDT",
        OrderStatus.NEW,
        "NEW",
        OrderType.LIMIT,
        PositionSide.LONG,
        True,
        None,
    ),
    "nautilus-rs__order_update_settlement.json": (
        "BTC/USDT:USDT",
        OrderStatus.FILLED,
        "FILLED",
        OrderType.LIMIT,
        PositionSide.LONG,
        True,
        "0.010",
    ),
    "nautilus-rs__order_update_trade_partial.json": (
        "BTC/USDT:USDT",
        OrderStatus.PARTIALLY_FILLED,
        "PARTIALLY_FILLED",
        OrderType.LIMIT,
        PositionSide.LONG,
        False,
        "0.001",
    ),
    "nautilus-py__ws_messages_ws_futures_order_update_liquidation.json": (
        "BTC/USDT:USDT",
        OrderStatus.FILLED,
        "FILLED",
        OrderType.MARKET,
        PositionSide.LONG,
        False,
        "0.100",
    ),
    "nautilus-py__ws_messages_ws_futures_order_update_liquidation_zero_qty.json": (
        "BTC/USDT:USDT",
        OrderStatus.FILLED,
        "FILLED",
        OrderType.MARKET,
        PositionSide.LONG,
        False,
        None,  # nothing traded
    ),
    "nautilus-py__ws_messages_ws_futures_order_update_adl.json": (
        "ETH/USDT:USDT",
        OrderStatus.FILLED,
        "FILLED",
        OrderType.MARKET,
        PositionSide.SHORT,
        False,
        "1.000",
    ),
    "nautilus-py__ws_messages_ws_futures_order_update_adl_filled.json": (
        "ETH/USDT:USDT",
        OrderStatus.FILLED,
        "FILLED",
        OrderType.MARKET,
        PositionSide.SHORT,
        False,
        "1.000",
    ),
    "nautilus-py__ws_messages_ws_futures_order_update_new_limit_if_touched_price_match.json": (
        "ETH/USDT:USDT",
        OrderStatus.NEW,
        "NEW",
        OrderType.LIMIT,  # USD-M TAKE_PROFIT is a limit order
        PositionSide.LONG,
        False,
        None,
    ),
    "nautilus-py__ws_messages_ws_futures_order_update_new_stop_limit_price_match.json": (
        "ETH/USDT:USDT",
        OrderStatus.NEW,
        "NEW",
        OrderType.LIMIT,  # USD-M STOP is a stop-limit order
        PositionSide.SHORT,
        False,
        None,
    ),
    "nautilus-py__ws_messages_ws_futures_order_update_new_price_match.json": (
        "ETH/USDT:USDT",
        OrderStatus.NEW,
        "NEW",
        OrderType.LIMIT,
        PositionSide.LONG,
        False,
        None,
    ),
    "nautilus-py__ws_messages_ws_futures_order_update_new_reduce_only_qty.json": (
        "ETH/USDT:USDT",
        OrderStatus.NEW,
        "NEW",
        OrderType.LIMIT,
        PositionSide.BOTH,
        True,
        None,
    ),
    "nautilus-py__ws_messages_ws_futures_order_update_settlement.json": (
        "BTC/USDT:USDT",
        OrderStatus.FILLED,
        "FILLED",
        OrderType.MARKET,
        PositionSide.SHORT,
        False,
        "0.050",
    ),
    "nautilus-py__ws_messages_ws_futures_order_update_trade_reduce_only_qty.json": (
        "ETH/USDT:USDT",
        OrderStatus.FILLED,
        "FILLED",
        OrderType.LIMIT,
        PositionSide.BOTH,
        True,
        "1.000",
    ),
    "nautilus-rs-old__ws_futures_order_trade_update_new.json": (
        "ETH/USDT:USDT",
        OrderStatus.NEW,
        "NEW",
        OrderType.LIMIT,
        PositionSide.BOTH,
        False,
        None,
    ),
    "nautilus-rs-old__ws_futures_order_trade_update_trade.json": (
        "ETH/USDT:USDT",
        OrderStatus.FILLED,
        "FILLED",
        OrderType.LIMIT,
        PositionSide.BOTH,
        False,
        "1.000",
    ),
}


@pytest.mark.parametrize("name", sorted(USDM_UPDATES))
def test_usdm_order_trade_updates(usdm: UserStreamHandler, name: str) -> None:
    symbol, status, venue_status, otype, side, reduce_only, fill_qty = USDM_UPDATES[name]
    raw = recorded("usdm", name)
    sent = json.loads(raw)
    detail = sent.get("data", sent)["o"]
    update, *fills = usdm.on_frame(raw)
    assert isinstance(update, OrderUpdate)
    assert (update.symbol, update.status, update.venue_status, update.order_type) == (
        symbol,
        status,
        venue_status,
        otype,
    )
    assert (update.position_side, update.reduce_only) == (side, reduce_only)
    assert [f.qty for f in fills] == ([] if fill_qty is None else [Decimal(fill_qty)])
    for fill in fills:
        assert isinstance(fill, Fill) and fill.trade_id == str(detail["t"])
        assert fill.price == Decimal(detail["L"]) and fill.fee == Decimal(detail.get("n") or 0)
    assert usdm.malformed == 0


def test_liquidation_fill_values(usdm: UserStreamHandler) -> None:
    name = "nautilus-py__ws_messages_ws_futures_order_update_liquidation.json"
    update, fill = usdm.on_frame(recorded("usdm", name))
    assert update.client_order_id == "autoclose-1234567890123456"
    assert (update.avg_price, update.trigger_price, update.price) == (Decimal(50000), None, None)
    assert fill == Fill(
        exchange="binance",
        market="linear",
        symbol="BTC/USDT:USDT",
        trade_id="1122334455",
        exchange_order_id="9876543210",
        client_order_id="autoclose-1234567890123456",
        side=OrderSide.SELL,
        price=Decimal("50000.00"),
        qty=Decimal("0.100"),
        fee=Decimal("5.00000000"),
        fee_asset="USDT",
        is_maker=False,
        ts=at(1759347763167),
    )


def test_delivery_contract_is_unmapped(usdm: UserStreamHandler) -> None:
    # BTCUSD_240329 is a dated contract: not among the instruments, counted, not guessed.
    assert usdm.on_frame(recorded("usdm", "nautilus-rs__order_update_delivery.json")) == []
    assert (usdm.unmapped, usdm.malformed) == (1, 0)


def test_corpus_account_updates(usdm: UserStreamHandler) -> None:
    balance, position = usdm.on_frame(
        recorded("usdm", "nautilus-rs-old__ws_futures_account_update.json")
    )
    assert isinstance(balance, BalanceUpdate) and isinstance(position, PositionUpdate)
    assert (balance.total, balance.delta) == (Decimal(10000), Decimal(0))  # bc absent: 0
    assert (position.symbol, position.qty, position.entry_price, position.margin_mode) == (
        "ETH/USDT:USDT",
        Decimal(1),
        Decimal(2500),
        "cross",
    )
    (bnfcr,) = usdm.on_frame(recorded("usdm", "nautilus-rs__account_update_bnfcr.json"))
    assert (bnfcr.asset, bnfcr.total) == ("BNFCR", Decimal("5001.28983031"))  # type: ignore[union-attr]
    for name in ("nautilus-rs__trade_lite.json", "nautilus-rs__algo_update_new.json"):
        assert usdm.on_frame(recorded("usdm", name)) == []


# --------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"nope",
        b"[]",
        b'{"subscriptionId":0,"event":{"e":"executionReport","s":"ETHUSDT"}}',
        b'{"subscriptionId":0,"event":{"no":"tag"}}',
        b'{"e":"ORDER_TRADE_UPDATE","E":1,"T":1,"o":{"s":"BTCUSDT"}}',
        b'{"something":"else"}',
    ],
)
def test_malformed_frames_are_counted_never_raised(raw: bytes) -> None:
    for handler in (spot_handler(), usdm_handler()):
        assert handler.on_frame(raw) == []
        assert handler.malformed + handler.ignored == 1


def test_bad_number_in_a_known_event_is_malformed(spot: UserStreamHandler) -> None:
    event = json.loads(payload("binance_spot_user_executionReport.json"))
    event["event"]["q"] = "one"
    assert spot.on_frame(frame(event)) == [] and spot.malformed == 1


def test_unknown_symbol_is_counted_not_guessed(spot: UserStreamHandler) -> None:
    event = json.loads(payload("binance_spot_user_executionReport.json"))
    event["event"]["s"] = "DOGEUSDT"
    assert spot.on_frame(frame(event)) == [] and spot.unmapped == 1


def test_rejects_instruments_of_another_market() -> None:
    linear = instrument(Exchange.BINANCE, Market.LINEAR, "BTC", "USDT", tick="0.1", step="0.001")
    with pytest.raises(ValueError, match="not binance spot"):
        UserStreamHandler(Market.SPOT, [linear])
