"""Order entry per venue: exconn's commands -> venue requests, venue replies -> exconn's
replies. A parametrized conformance part runs the same checks on both venues; request shapes
are checked against the reference payloads; one simulator test per venue places, amends and
cancels through the builders and resolves an unknown outcome by a query by client id."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from exconn import errors
from exconn.errors import InvalidOrder
from exconn.messages import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    PlaceOrder,
    PositionSide,
)
from exconn.model.enums import Exchange, Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.model.instruments import Instrument
from exconn.orders.command import (
    IntentJournal,
    IntentState,
    ReplyContext,
    outcome_of_error,
    validate_place,
)
from exconn.venues.binance import order_entry as binance
from exconn.venues.bybit import order_entry as bybit
from exconn.venues.keys import Credentials

D = Decimal
PAYLOADS = Path("/work/shared/reference/payloads")
CORPUS = Path("/work/shared/corpus")
VENUES = {"binance": binance, "bybit": bybit}
# binance.md vectors §1: the docs' published example secret (not a live key).
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def payload(name: str) -> Any:
    path = PAYLOADS / name
    if not path.exists():
        pytest.skip(f"reference payload {name} not available")
    return json.loads(path.read_text())


def instrument(exchange: str, market: Market = Market.SPOT, symbol: str = "BTC") -> Instrument:
    linear = market is Market.LINEAR
    return Instrument(
        exchange=Exchange(exchange),
        market=market,
        symbol=f"{symbol}/USDT:USDT" if linear else f"{symbol}/USDT",
        venue_symbol=f"{symbol}USDT",
        base=symbol,
        quote="USDT",
        settle="USDT" if linear else None,
        tick_size=D("0.01"),
        step_size=D("0.00001"),
        min_qty=D("0.00001"),
        min_notional=D("5"),
    )


def place(exchange: str, market: Market = Market.SPOT, **kw: Any) -> PlaceOrder:
    base: dict[str, Any] = {
        "exchange": exchange,
        "market": market,
        "symbol": "BTC/USDT:USDT" if market is Market.LINEAR else "BTC/USDT",
        "side": OrderSide.BUY,
        "type": OrderType.LIMIT,
        "qty": D("0.0100"),
        "price": D("60000.50"),
        "client_order_id": "cid-1",
    }
    base.update(kw)
    return PlaceOrder(**base)


def ctx(exchange: str, action: str = "place", cid: str | None = "cid-1") -> ReplyContext:
    return ReplyContext(
        exchange=exchange, market="spot", symbol="BTC/USDT", action=action, client_order_id=cid
    )


# ================================================================== conformance (both venues)
@pytest.fixture(params=sorted(VENUES))
def venue(request: pytest.FixtureRequest) -> tuple[str, ModuleType]:
    return request.param, VENUES[request.param]


SAME_API = (
    "place_request",
    "amend_request",
    "cancel_request",
    "cancel_all_request",
    "place_batch_request",
    "cancel_batch_request",
    "ws_place_request",
    "ws_cancel_request",
    "parse_reply",
    "parse_batch_reply",
)


def test_both_venues_offer_the_same_functions(venue) -> None:
    _, module = venue
    assert all(callable(getattr(module, name)) for name in SAME_API)


def test_requests_are_signed_order_entry_with_decimal_strings(venue) -> None:
    name, module = venue
    for market in Market:
        request = module.place_request(place(name, market), instrument(name, market))
        assert request.signed and request.is_order
        assert request.method == "POST"
        values = json.dumps(request.params)
        assert "60000.5" in values and "0.01" in values  # plain, no trailing zeros, no float
        assert "cid-1" in values


def test_builders_refuse_an_order_without_client_id_or_for_another_instrument(venue) -> None:
    name, module = venue
    with pytest.raises(InvalidOrder, match="client order id"):
        module.place_request(place(name, client_order_id=None), instrument(name))
    with pytest.raises(InvalidOrder):
        module.place_request(place(name), instrument(name, symbol="ETH"))
    with pytest.raises(InvalidOrder):
        module.place_request(place(name, client_order_id="has space"), instrument(name))
    with pytest.raises(InvalidOrder):
        module.cancel_request(
            CancelOrder(exchange=name, market=Market.SPOT, symbol="BTC/USDT"), instrument(name)
        )


def test_success_replies_are_accepted_with_both_ids(venue) -> None:
    name, module = venue
    body = (
        payload("binance_spot_rest_order_ack.json")
        if name == "binance"
        else payload("bybit_rest_order_create.json")
    )
    reply = module.parse_reply(body, ctx(name))
    assert isinstance(reply, OrderAccepted)
    assert reply.exchange_order_id in ("28", "1321003749386327552")
    assert reply.client_order_id in ("6gCrw2kRUAF9CvJDGP16IP", "spot-test-postonly")


@pytest.mark.parametrize(
    ("binance_body", "bybit_body", "kind", "reason"),
    [
        (
            {"code": -2010, "msg": "Account has insufficient balance for requested action."},
            {"retCode": 110007, "retMsg": "ab not enough for new order"},
            OrderRejected,
            "InsufficientFunds",
        ),
        (
            {"code": -1013, "msg": "Filter failure: PRICE_FILTER"},
            {"retCode": 170134, "retMsg": "Order price has too many decimals."},
            OrderRejected,
            "InvalidOrder",
        ),
        (
            {"code": -1007, "msg": "Timeout waiting for response from backend server."},
            {"retCode": 10000, "retMsg": "Server Timeout"},
            OrderOutcomeUnknown,
            None,
        ),
        (
            {"code": -1006, "msg": "An unexpected response was received."},
            {"retCode": 10016, "retMsg": "Internal server error."},
            OrderOutcomeUnknown,
            None,
        ),
    ],
)
def test_refusals_and_doubtful_answers(venue, binance_body, bybit_body, kind, reason) -> None:
    name, module = venue
    body = binance_body if name == "binance" else bybit_body
    reply = module.parse_reply(body, ctx(name), status=400 if name == "binance" else 200)
    assert isinstance(reply, kind)
    assert reply.client_order_id == "cid-1"
    assert reply.code == (body.get("code") if name == "binance" else body["retCode"])
    if reason is not None:
        assert reply.reason == reason


def test_an_unreadable_answer_is_unknown_never_rejected(venue) -> None:
    name, module = venue
    for body in (None, "garbage", 17):
        assert isinstance(module.parse_reply(body, ctx(name)), OrderOutcomeUnknown)


# ================================================================== Binance specifics
def test_binance_spot_limit_params_in_order() -> None:
    request = binance.place_request(place("binance"), instrument("binance"))
    assert (request.method, request.path) == ("POST", "/api/v3/order")
    assert request.params == {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "60000.5",
        "newClientOrderId": "cid-1",
        "newOrderRespType": "RESULT",
    }


@pytest.mark.parametrize(
    ("market", "changes", "expected", "absent"),
    [
        (Market.SPOT, {"post_only": True}, {"type": "LIMIT_MAKER"}, ("timeInForce",)),
        (
            Market.SPOT,
            {"time_in_force": TimeInForce.POST_ONLY},
            {"type": "LIMIT_MAKER"},
            ("timeInForce",),
        ),
        (Market.LINEAR, {"post_only": True}, {"type": "LIMIT", "timeInForce": "GTX"}, ()),
        (Market.SPOT, {"time_in_force": TimeInForce.IOC}, {"timeInForce": "IOC"}, ()),
        (Market.SPOT, {"time_in_force": TimeInForce.FOK}, {"timeInForce": "FOK"}, ()),
        (
            Market.SPOT,
            {"type": OrderType.MARKET, "price": None},
            {"type": "MARKET"},
            ("timeInForce", "price"),
        ),
        (
            Market.LINEAR,
            {"reduce_only": True},
            {"reduceOnly": "true"},
            ("positionSide",),
        ),
        (
            Market.LINEAR,
            {"position_side": PositionSide.SHORT, "side": OrderSide.SELL},
            {"positionSide": "SHORT", "side": "SELL"},
            ("reduceOnly",),
        ),
    ],
)
def test_binance_mapping(market, changes, expected, absent) -> None:
    request = binance.place_request(
        place("binance", market, **changes), instrument("binance", market)
    )
    assert request.path == ("/api/v3/order" if market is Market.SPOT else "/fapi/v1/order")
    for key, value in expected.items():
        assert request.params[key] == value
    for key in absent:
        assert key not in request.params


def test_binance_amend_cancel_and_cancel_all() -> None:
    spot, usdm = instrument("binance"), instrument("binance", Market.LINEAR)
    amend = binance.amend_request(
        AmendOrder(
            exchange="binance",
            market=Market.SPOT,
            symbol="BTC/USDT",
            client_order_id="cid-1",
            qty=D("0.005"),
        ),
        spot,
    )
    assert (amend.method, amend.path) == ("PUT", "/api/v3/order/amend/keepPriority")
    assert amend.params == {"symbol": "BTCUSDT", "origClientOrderId": "cid-1", "newQty": "0.005"}
    with pytest.raises(InvalidOrder, match="cancel and place"):
        binance.amend_request(
            AmendOrder(
                exchange="binance",
                market=Market.SPOT,
                symbol="BTC/USDT",
                client_order_id="cid-1",
                price=D("1"),
            ),
            spot,
        )
    modify = binance.amend_request(
        AmendOrder(
            exchange="binance",
            market=Market.LINEAR,
            symbol="BTC/USDT:USDT",
            exchange_order_id="99",
            side=OrderSide.BUY,
            qty=D("0.2"),
            price=D("55"),
        ),
        usdm,
    )
    assert (modify.method, modify.path) == ("PUT", "/fapi/v1/order")
    assert modify.params == {
        "symbol": "BTCUSDT",
        "orderId": "99",
        "side": "BUY",
        "quantity": "0.2",
        "price": "55",
    }
    with pytest.raises(InvalidOrder, match="side, qty and price"):
        binance.amend_request(
            AmendOrder(
                exchange="binance",
                market=Market.LINEAR,
                symbol="BTC/USDT:USDT",
                client_order_id="c",
                qty=D("0.2"),
            ),
            usdm,
        )
    cancel = binance.cancel_request(
        CancelOrder(
            exchange="binance",
            market=Market.LINEAR,
            symbol="BTC/USDT:USDT",
            client_order_id="myid123",
        ),
        usdm,
    )
    assert (cancel.method, cancel.path) == ("DELETE", "/fapi/v1/order")
    assert cancel.params == {"symbol": "BTCUSDT", "origClientOrderId": "myid123"}
    every = binance.cancel_all_request(
        CancelAll(exchange="binance", market=Market.SPOT, symbol="BTC/USDT"), spot
    )
    assert (every.method, every.path, every.params) == (
        "DELETE",
        "/api/v3/openOrders",
        {"symbol": "BTCUSDT"},
    )
    with pytest.raises(InvalidOrder, match="needs a symbol"):
        binance.cancel_all_request(CancelAll(exchange="binance", market=Market.SPOT), None)


def test_binance_cancel_matches_the_ccxt_recorded_request() -> None:
    """ccxt's cancelOrderWithClientOrderId on USD-M: DELETE /fapi/v1/order with symbol and
    origClientOrderId (timestamp, recvWindow, signature are added by the signer)."""
    path = CORPUS / "signing/ccxt-static-request/ccxt-static-request__binance_subset.json"
    if not path.exists():
        pytest.skip("corpus not available")
    case = json.loads(path.read_text())["methods"]["cancelOrderWithClientOrderId"][0]
    from urllib.parse import parse_qsl, urlsplit

    url = urlsplit(case["url"])
    sent = {
        k: v for k, v in parse_qsl(url.query) if k not in ("timestamp", "recvWindow", "signature")
    }
    ours = binance.cancel_request(
        CancelOrder(
            exchange="binance",
            market=Market.LINEAR,
            symbol="LTC/USDT:USDT",
            client_order_id="myid123",
        ),
        instrument("binance", Market.LINEAR, "LTC"),
    )
    assert url.path == ours.path and ours.method == "DELETE"
    assert ours.params == sent


def test_binance_batches_are_usdm_only() -> None:
    usdm = instrument("binance", Market.LINEAR)
    orders = [place("binance", Market.LINEAR, client_order_id=f"b-{i}") for i in range(3)]
    batch = binance.place_batch_request(orders, [usdm] * 3)
    assert (batch.method, batch.path) == ("POST", "/fapi/v1/batchOrders")
    items = json.loads(batch.params["batchOrders"])
    assert [i["newClientOrderId"] for i in items] == ["b-0", "b-1", "b-2"]
    with pytest.raises(InvalidOrder, match="1-5"):
        binance.place_batch_request(
            [place("binance", Market.LINEAR, client_order_id=f"b-{i}") for i in range(6)],
            [usdm] * 6,
        )
    with pytest.raises(InvalidOrder, match="spot has no"):
        binance.place_batch_request([place("binance")], [instrument("binance")])
    cancels = [
        CancelOrder(
            exchange="binance",
            market=Market.LINEAR,
            symbol="BTC/USDT:USDT",
            client_order_id=f"b-{i}",
        )
        for i in range(2)
    ]
    cancel = binance.cancel_batch_request(cancels, [usdm] * 2)
    assert cancel.method == "DELETE"
    assert json.loads(cancel.params["origClientOrderIdList"]) == ["b-0", "b-1"]
    replies = binance.parse_batch_reply(
        [
            payload("binance_usdm_rest_order.json"),
            {"code": -2019, "msg": "Margin is insufficient."},
        ],
        [ctx("binance", cid="b-0"), ctx("binance", cid="b-1")],
    )
    assert isinstance(replies[0], OrderAccepted) and replies[0].status is OrderStatus.NEW
    assert isinstance(replies[1], OrderRejected) and replies[1].code == -2019


def test_binance_ws_api_order_place_shape_and_signature() -> None:
    reference = payload("binance_spot_wsapi_order_place_request.json")
    creds = Credentials(DOC_KEY, secret=DOC_SECRET)
    order = place("binance", qty=D("10"), price=D("0.1"))
    frame = binance.ws_place_request(
        order,
        instrument("binance"),
        req_id=reference["id"],
        timestamp_ms=1655716096498,
        credentials=creds,
    )
    assert frame["id"] == reference["id"] and frame["method"] == reference["method"]
    params = frame["params"]
    for key, value in reference["params"].items():
        if key not in ("apiKey", "signature"):
            assert params[key] == value, key
    assert params["apiKey"] == DOC_KEY
    assert set(params) - set(reference["params"]) == {
        "newClientOrderId",
        "newOrderRespType",
        "recvWindow",
    }
    signed = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
    expected = hmac.new(DOC_SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
    assert params["signature"] == expected
    assert DOC_SECRET not in json.dumps(frame)
    with pytest.raises(errors.ConfigError):
        binance.ws_place_request(order, instrument("binance"), req_id="1", timestamp_ms=1)


def test_binance_ws_api_replies() -> None:
    ok = binance.parse_reply(
        payload("binance_spot_wsapi_order_place_response.json"), ctx("binance")
    )
    assert isinstance(ok, OrderAccepted)
    assert ok.exchange_order_id == "12510053279" and ok.status is OrderStatus.NEW
    assert ok.ts is not None
    refused = binance.parse_reply(payload("binance_spot_wsapi_error_response.json"), ctx("binance"))
    assert isinstance(refused, OrderRejected) and refused.reason == "InsufficientFunds"
    unknown = binance.parse_reply(
        {"id": "x", "status": 500, "error": {"code": -1006, "msg": "unexpected"}}, ctx("binance")
    )
    assert isinstance(unknown, OrderOutcomeUnknown) and unknown.code == -1006


def test_binance_cancel_and_amend_replies() -> None:
    cancel = binance.parse_reply(
        payload("binance_spot_rest_cancelOrder.json"), ctx("binance", "cancel")
    )
    assert isinstance(cancel, OrderAccepted)
    assert cancel.client_order_id == "myOrder1" and cancel.status is OrderStatus.CANCELED
    amend = binance.parse_reply(
        payload("binance_spot_rest_amendKeepPriority.json"), ctx("binance", "amend")
    )
    assert isinstance(amend, OrderAccepted) and amend.exchange_order_id == "33"


# ================================================================== Bybit specifics
@pytest.mark.parametrize(
    ("market", "changes", "expected", "absent"),
    [
        (
            Market.SPOT,
            {},
            {"category": "spot", "orderType": "Limit", "timeInForce": "GTC"},
            ("reduceOnly", "positionIdx", "marketUnit"),
        ),
        (Market.LINEAR, {"post_only": True}, {"category": "linear", "timeInForce": "PostOnly"}, ()),
        (Market.SPOT, {"time_in_force": TimeInForce.IOC}, {"timeInForce": "IOC"}, ()),
        (
            Market.SPOT,
            {"type": OrderType.MARKET, "price": None},
            {"orderType": "Market", "marketUnit": "baseCoin"},
            ("timeInForce", "price"),
        ),
        (
            Market.LINEAR,
            {"type": OrderType.MARKET, "price": None},
            {"orderType": "Market"},
            ("marketUnit", "timeInForce"),
        ),
        (Market.LINEAR, {"reduce_only": True}, {"reduceOnly": True}, ("positionIdx",)),
        (Market.LINEAR, {"position_side": PositionSide.LONG}, {"positionIdx": 1}, ()),
        (
            Market.LINEAR,
            {"position_side": PositionSide.SHORT, "side": OrderSide.SELL},
            {"positionIdx": 2, "side": "Sell"},
            (),
        ),
        (Market.LINEAR, {"position_side": PositionSide.BOTH}, {"positionIdx": 0}, ()),
    ],
)
def test_bybit_mapping(market, changes, expected, absent) -> None:
    request = bybit.place_request(place("bybit", market, **changes), instrument("bybit", market))
    assert (request.method, request.path) == ("POST", "/v5/order/create")
    assert request.params["orderLinkId"] == "cid-1" and request.params["symbol"] == "BTCUSDT"
    for key, value in expected.items():
        assert request.params[key] == value
    for key in absent:
        assert key not in request.params


def test_bybit_matches_the_ccxt_recorded_bodies() -> None:
    """ccxt's createOrder bodies for plain limit orders: the same keys and values (ours adds
    orderLinkId and the explicit GTC)."""
    path = CORPUS / "signing/ccxt-static-request/ccxt-static-request__bybit_subset.json"
    if not path.exists():
        pytest.skip("corpus not available")
    cases = json.loads(path.read_text())["methods"]["createOrder"]
    checked = 0
    for case in cases:
        if len(case["input"]) != 5 or case["input"][1] != "limit":
            continue
        symbol, _, side, qty, price = case["input"]
        base = symbol.split("/")[0]
        market = Market.LINEAR if ":" in symbol else Market.SPOT
        order = PlaceOrder(
            exchange="bybit",
            market=market,
            symbol=symbol,
            side=OrderSide(side),
            type=OrderType.LIMIT,
            qty=D(str(qty)),
            price=D(str(price)),
            client_order_id="x-1",
        )
        ours = bybit.place_request(order, instrument("bybit", market, base)).params
        sent = json.loads(case["output"])
        assert {k: ours[k] for k in sent} == sent, case["description"]
        assert set(ours) - set(sent) == {"orderLinkId", "timeInForce"}
        checked += 1
    assert checked >= 2


def test_bybit_amend_cancel_cancel_all_and_batches() -> None:
    spot, linear = instrument("bybit"), instrument("bybit", Market.LINEAR)
    amend = bybit.amend_request(
        AmendOrder(
            exchange="bybit",
            market=Market.LINEAR,
            symbol="BTC/USDT:USDT",
            client_order_id="linear-004",
            price=D("2800.5"),
        ),
        linear,
    )
    assert (amend.path, amend.params) == (
        "/v5/order/amend",
        {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "linear-004", "price": "2800.5"},
    )
    with pytest.raises(InvalidOrder, match="qty, price or both"):
        bybit.amend_request(
            AmendOrder(
                exchange="bybit", market=Market.SPOT, symbol="BTC/USDT", client_order_id="a"
            ),
            spot,
        )
    cancel = bybit.cancel_request(
        CancelOrder(exchange="bybit", market=Market.SPOT, symbol="BTC/USDT", exchange_order_id="9"),
        spot,
    )
    assert cancel.params == {"category": "spot", "symbol": "BTCUSDT", "orderId": "9"}
    assert bybit.cancel_all_request(
        CancelAll(exchange="bybit", market=Market.SPOT), None
    ).params == {"category": "spot"}
    with pytest.raises(InvalidOrder):
        bybit.cancel_all_request(CancelAll(exchange="bybit", market=Market.LINEAR), None)
    batch = bybit.place_batch_request(
        [place("bybit", Market.LINEAR, client_order_id=f"batch-00{i}") for i in range(3)],
        [linear] * 3,
    )
    assert batch.path == "/v5/order/create-batch" and batch.is_order
    assert batch.params["category"] == "linear"
    assert [i["orderLinkId"] for i in batch.params["request"]] == [
        "batch-000",
        "batch-001",
        "batch-002",
    ]
    assert all("category" not in i for i in batch.params["request"])
    with pytest.raises(InvalidOrder, match="1-10"):
        bybit.place_batch_request(
            [place("bybit", client_order_id=f"s-{i}") for i in range(11)], [spot] * 11
        )
    cancels = bybit.cancel_batch_request(
        [CancelOrder(exchange="bybit", market=Market.SPOT, symbol="BTC/USDT", client_order_id="a")],
        [spot],
    )
    assert cancels.path == "/v5/order/cancel-batch"


def test_bybit_batch_reply_per_item() -> None:
    body = payload("bybit_wstrade_batch_create_response.json")
    replies = bybit.parse_batch_reply(body, [ctx("bybit", cid=f"batch-00{i}") for i in range(3)])
    assert all(isinstance(r, OrderRejected) and r.code == 10001 for r in replies)
    body = json.loads(json.dumps(body))
    body["retExtInfo"]["list"][1] = {"code": 0, "msg": "OK"}
    body["data"]["list"][1]["orderId"] = "abc"
    replies = bybit.parse_batch_reply(body, [ctx("bybit", cid=f"batch-00{i}") for i in range(3)])
    assert isinstance(replies[1], OrderAccepted) and replies[1].exchange_order_id == "abc"
    broken = bybit.parse_batch_reply({"retCode": 0, "result": {}}, [ctx("bybit")])
    assert isinstance(broken[0], OrderOutcomeUnknown)


def test_bybit_trade_ws_shape_matches_the_reference() -> None:
    reference = payload("bybit_wstrade_order_create_request.json")
    order = PlaceOrder(
        exchange="bybit",
        market=Market.LINEAR,
        symbol="ETH/USDT:USDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        qty=D("0.2"),
        price=D("2800"),
        post_only=True,
        client_order_id="test-005-link",
    )
    frame = bybit.ws_place_request(
        order,
        instrument("bybit", Market.LINEAR, "ETH"),
        req_id="test-005",
        timestamp_ms=1711001595207,
        recv_window_ms=8000,
    )
    assert frame["reqId"] == reference["reqId"] and frame["op"] == reference["op"]
    for key in ("X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW"):
        assert frame["header"][key] == reference["header"][key]
    args = frame["args"][0]
    assert {k: args[k] for k in reference["args"][0]} == reference["args"][0]
    assert set(args) - set(reference["args"][0]) == {"orderLinkId"}
    ok = bybit.parse_reply(payload("bybit_wstrade_order_create_response.json"), ctx("bybit"))
    assert isinstance(ok, OrderAccepted)
    assert ok.exchange_order_id == "a4c1718e-fe53-4659-a118-1f6ecce04ad9"
    assert ok.client_order_id == "cid-1"  # the venue echoed "", ours stands
    dup = bybit.parse_reply({"reqId": "x", "retCode": 20006, "retMsg": "dup"}, ctx("bybit"))
    assert isinstance(dup, OrderOutcomeUnknown)


def test_bybit_rest_replies() -> None:
    for name, action in [
        ("bybit_rest_order_amend.json", "amend"),
        ("bybit_rest_order_cancel.json", "cancel"),
        ("bybit_rest_order_cancel_all.json", "cancel_all"),
    ]:
        reply = bybit.parse_reply(payload(name), ctx("bybit", action, cid=None))
        assert isinstance(reply, OrderAccepted), name


# ================================================================== against the simulators
def _journal_send(journal: IntentJournal, order: PlaceOrder, send, parse, rctx: ReplyContext):
    """What OrderCommand does with one placement: record, permit, send, classify, settle."""
    journal.record(order)
    journal.begin_send(order.exchange, order.market, str(order.client_order_id))
    try:
        body = send()
    except Exception as exc:  # every failure is classified, none escapes
        reply = outcome_of_error(exc, rctx)
    else:
        reply = parse(body, rctx)
    journal.settle(reply)
    return reply


@pytest.mark.parametrize("fault", ["timeout_after_accept", "error_after_accept"])
def test_binance_spot_sim_place_amend_cancel_and_unknown_resolved(fault: str) -> None:
    from exconn.sim import BinanceSpotSim
    from tests.chaos.binance_rest_support import ANY, credentials, spot_client

    with BinanceSpotSim(accounts=1) as sim:
        client = spot_client(sim.rest_url, credentials(sim.api_keys(0), "hmac"))
        try:
            client.sync_clock()
            inst = instrument("binance")
            journal = IntentJournal()
            o = place("binance", qty=D("0.001"), price=D("10000"), client_order_id="sim-1")
            validate_place(o, inst)
            rctx = ctx("binance", cid="sim-1")
            reply = _journal_send(
                journal,
                o,
                lambda: client.call(binance.place_request(o, inst), ANY),
                binance.parse_reply,
                rctx,
            )
            assert isinstance(reply, OrderAccepted) and reply.status is OrderStatus.NEW
            amend = AmendOrder(
                exchange="binance",
                market=Market.SPOT,
                symbol="BTC/USDT",
                client_order_id="sim-1",
                qty=D("0.0006"),
            )
            amended = binance.parse_reply(
                client.call(binance.amend_request(amend, inst), ANY), ctx("binance", "amend")
            )
            assert isinstance(amended, OrderAccepted)
            cancel = CancelOrder(
                exchange="binance", market=Market.SPOT, symbol="BTC/USDT", client_order_id="sim-1"
            )
            canceled = binance.parse_reply(
                client.call(binance.cancel_request(cancel, inst), ANY), ctx("binance", "cancel")
            )
            assert isinstance(canceled, OrderAccepted) and canceled.status is OrderStatus.CANCELED

            # The venue takes the order, the answer is lost: unknown, never sent again.
            sim.add_fault(
                fault,
                endpoint="POST /api/v3/order",
                count=1,
                **({"delay_s": 0} if fault == "timeout_after_accept" else {}),
            )
            o2 = place("binance", qty=D("0.001"), price=D("10000"), client_order_id="sim-2")
            before = sim.stats()["rest_requests"]
            reply = _journal_send(
                journal,
                o2,
                lambda: client.call(binance.place_request(o2, inst), ANY),
                binance.parse_reply,
                ctx("binance", cid="sim-2"),
            )
            assert isinstance(reply, OrderOutcomeUnknown) and reply.client_order_id == "sim-2"
            with pytest.raises(errors.OutcomeUnknown):
                journal.begin_send("binance", Market.SPOT, "sim-2")
            assert sim.stats()["rest_requests"] - before == 1
            found = client.signed_request(
                "GET",
                "/api/v3/order",
                {"symbol": "BTCUSDT", "origClientOrderId": "sim-2"},
                ANY,
                is_order=False,
            )
            intent = journal.resolve(
                "binance",
                Market.SPOT,
                "sim-2",
                exists=True,
                exchange_order_id=str(found["orderId"]),
            )
            assert intent.state is IntentState.ACCEPTED
            open_orders = client.signed_request(
                "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, ANY, is_order=False
            )
            assert [x["clientOrderId"] for x in open_orders].count("sim-2") == 1
            assert len(open_orders) == 1
        finally:
            client.close()


@pytest.mark.parametrize("fault", ["timeout_after_accept", "error_after_accept"])
def test_bybit_sim_place_amend_cancel_and_unknown_resolved(fault: str) -> None:
    from exconn.sim import BybitSim
    from exconn.venues.bybit import endpoints
    from tests.chaos.bybit_rest_support import ANY, bybit_client, hmac_credentials, resting_price

    with BybitSim() as sim:
        client = bybit_client(sim.rest_url, hmac_credentials(sim), timeout=1.0)
        try:
            client.sync_clock()
            inst = instrument("bybit")
            price = resting_price(client)
            journal = IntentJournal()
            o = place("bybit", qty=D("0.001"), price=price, client_order_id="sim-1")
            reply = _journal_send(
                journal,
                o,
                lambda: client.call(bybit.place_request(o, inst), ANY),
                bybit.parse_reply,
                ctx("bybit", cid="sim-1"),
            )
            assert isinstance(reply, OrderAccepted) and reply.exchange_order_id
            amend = AmendOrder(
                exchange="bybit",
                market=Market.SPOT,
                symbol="BTC/USDT",
                client_order_id="sim-1",
                qty=D("0.002"),
            )
            amended = bybit.parse_reply(
                client.call(bybit.amend_request(amend, inst), ANY), ctx("bybit", "amend")
            )
            assert isinstance(amended, OrderAccepted)
            cancel = CancelOrder(
                exchange="bybit", market=Market.SPOT, symbol="BTC/USDT", client_order_id="sim-1"
            )
            canceled = bybit.parse_reply(
                client.call(bybit.cancel_request(cancel, inst), ANY), ctx("bybit", "cancel")
            )
            assert isinstance(canceled, OrderAccepted)

            if fault == "timeout_after_accept":
                sim.timeout_after_accept(delay_s=3)
            else:
                sim.error_after_accept(status=500)
            o2 = place("bybit", qty=D("0.001"), price=price, client_order_id="sim-2")
            before = int(sim.stats()["rest_requests"])
            reply = _journal_send(
                journal,
                o2,
                lambda: client.call(bybit.place_request(o2, inst), ANY),
                bybit.parse_reply,
                ctx("bybit", cid="sim-2"),
            )
            assert isinstance(reply, OrderOutcomeUnknown) and reply.client_order_id == "sim-2"
            with pytest.raises(errors.OutcomeUnknown):
                journal.begin_send("bybit", Market.SPOT, "sim-2")
            assert int(sim.stats()["rest_requests"]) - before == 1
            found = client.call(endpoints.open_orders("spot", order_link_id="sim-2"), ANY)
            orders = found["result"]["list"]
            assert [x["orderLinkId"] for x in orders] == ["sim-2"]
            journal.resolve(
                "bybit", Market.SPOT, "sim-2", exists=True, exchange_order_id=orders[0]["orderId"]
            )
            every = client.call(endpoints.open_orders("spot", symbol="BTCUSDT"), ANY)
            assert [x["orderLinkId"] for x in every["result"]["list"]] == ["sim-2"]
        finally:
            client.close()
