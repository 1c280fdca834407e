"""What an order-WebSocket answer says about the request budget (the venues' ``WsEntry.feedback``,
read from the reference answers), and ``RestClient.note_answer`` applying it as an HTTP answer
of the same request would be applied: REST traffic stops after a WebSocket 429/418 (same IP
weight), Bybit's 10006 stops that endpoint's per-UID budget until its reset, usage counts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from exconn.errors import Banned, RateLimited
from exconn.messages import PlaceOrder
from exconn.model.enums import Exchange, Market, OrderSide, OrderType
from exconn.model.instruments import Instrument
from exconn.transport.rest import AnswerFeedback, RestClient
from exconn.venues.binance import order_entry as binance
from exconn.venues.bybit import endpoints as bybit_endpoints
from exconn.venues.bybit import order_entry as bybit
from exconn.venues.driver import venue_rest_client

PAYLOADS = Path("/work/shared/reference/payloads")
NOW_MS = 1_700_000_000_000  # the venue time in the answers (ms, an int as on the wire)
NOW_S = NOW_MS / 1000  # the test's wall clock; the REST clients' clocks have no offset
ANY = msgspec.json.Decoder()
D = Decimal
LINEAR = Instrument(
    exchange=Exchange.BYBIT,
    market=Market.LINEAR,
    symbol="BTC/USDT:USDT",
    venue_symbol="BTCUSDT",
    base="BTC",
    quote="USDT",
    settle="USDT",
    tick_size=D("0.1"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
    max_qty=D("100"),
    min_notional=D("5"),
)


def _payload(name: str) -> Any:
    path = PAYLOADS / name
    if not path.exists():
        pytest.skip(f"reference payload {name} not present")
    return json.loads(path.read_text())


def _bybit_order() -> PlaceOrder:
    return PlaceOrder(
        exchange="bybit",
        market=Market.LINEAR,
        symbol="BTC/USDT:USDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        qty=D("0.01"),
        price=D("60000"),
        client_order_id="cid-1",
    )


# -- Binance WS API answers ------------------------------------------------------------------------
def test_binance_418_answer_reads_as_a_ban_until_retry_after_epoch_ms() -> None:
    answer = _payload("binance_spot_wsapi_ip_banned_418.json")
    fb = binance.WsEntry.feedback(answer, now_ms=0)
    assert fb.status == 418 and fb.code == -1003
    # retryAfter is epoch ms, counted from the answer's own serverTime (not from now_ms).
    assert fb.retry_after == pytest.approx((1659146400000 - 1659142907531) / 1000)
    assert fb.headers == {"X-MBX-USED-WEIGHT-1M": "2411"}


def test_binance_answers_carry_their_rate_limit_counts_as_usage_headers() -> None:
    fb = binance.WsEntry.feedback(_payload("binance_spot_wsapi_order_place_response.json"), 0)
    assert fb == AnswerFeedback(
        status=200,
        code=None,
        headers={
            "X-MBX-ORDER-COUNT-10S": "12",
            "X-MBX-ORDER-COUNT-1D": "4043",
            "X-MBX-USED-WEIGHT-1M": "321",
        },
    )
    refused = binance.WsEntry.feedback(_payload("binance_spot_wsapi_error_response.json"), 0)
    assert refused.status == 400 and refused.code == -2010 and refused.retry_after is None
    assert refused.headers["X-MBX-USED-WEIGHT-1M"] == "322"


def test_binance_retry_after_without_server_time_counts_from_now() -> None:
    answer = {
        "id": "q",
        "status": 429,
        "error": {
            "code": -1003,
            "msg": "Too much request weight used",
            "data": {"retryAfter": 5500},
        },
    }
    fb = binance.WsEntry.feedback(answer, now_ms=3000)
    assert fb.status == 429 and fb.retry_after == pytest.approx(2.5)
    past = binance.WsEntry.feedback(answer, now_ms=9000)
    assert past.retry_after == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "text",
        [],
        {"id": "q", "status": "429", "error": "x", "rateLimits": {"count": 1}},
        {"id": "q", "status": True, "error": {"code": "-1003", "data": {"retryAfter": "1"}}},
        {"rateLimits": [None, {"rateLimitType": "REQUEST_WEIGHT", "interval": "", "count": 3}]},
        {
            "rateLimits": [
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "count": 3,
                }
            ]
        },
    ],
)
def test_a_malformed_binance_answer_says_nothing(answer: Any) -> None:
    assert binance.WsEntry.feedback(answer, 0) == AnswerFeedback()


# -- Bybit /v5/trade answers -----------------------------------------------------------------------
def test_bybit_answer_header_is_the_rest_usage_headers() -> None:
    fb = bybit.WsEntry.feedback(_payload("bybit_wstrade_order_create_response.json"), 0)
    assert fb.status == 200 and fb.code == 0 and fb.retry_after is None
    assert fb.headers["X-Bapi-Limit"] == "10" and fb.headers["X-Bapi-Limit-Status"] == "9"
    assert fb.headers["X-Bapi-Limit-Reset-Timestamp"] == "1711001595208"


@pytest.mark.parametrize(
    ("code", "status"), [(10006, 200), (10429, 429), (20003, 429), (10403, 429)]
)
def test_bybit_back_off_codes_stand_for_http_429(code: int, status: int) -> None:
    answer = {"reqId": "r", "retCode": code, "retMsg": "x", "op": "order.create", "header": {}}
    fb = bybit.WsEntry.feedback(answer, 0)
    assert (fb.status, fb.code) == (status, code)


@pytest.mark.parametrize("answer", [None, [], {"retCode": "10006", "header": ["X-Bapi-Limit"]}])
def test_a_malformed_bybit_answer_says_nothing(answer: Any) -> None:
    assert bybit.WsEntry.feedback(answer, 0) == AnswerFeedback()


# -- RestClient.note_answer ------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return httpx.Response(200, json={"bids": [], "asks": [], "lastUpdateId": 1})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def binance_rest(recorder: Recorder) -> Iterator[RestClient]:
    rest = venue_rest_client(
        "binance",
        "spot",
        "http://127.0.0.1:9",
        max_wait=0.0,
        wall=lambda: NOW_S,
        transport=httpx.MockTransport(recorder),
    )
    try:
        yield rest
    finally:
        rest.close()


@pytest.fixture
def bybit_rest(recorder: Recorder) -> Iterator[RestClient]:
    rest = RestClient(
        "http://127.0.0.1:9",
        exchange="bybit",
        venue=bybit_endpoints.REST,
        max_wait=0.0,
        wall=lambda: NOW_S,
        transport=httpx.MockTransport(recorder),
    )
    try:
        yield rest
    finally:
        rest.close()


def _depth(rest: RestClient) -> Any:
    return rest.get("/api/v3/depth", {"symbol": "BTCUSDT", "limit": "100"}, ANY)


def _binance_place() -> binance.OrderRequest:
    return binance.OrderRequest("POST", "/api/v3/order", {"symbol": "BTCUSDT"})


def test_a_binance_ws_429_stops_rest_traffic_until_retry_after(
    binance_rest: RestClient, recorder: Recorder
) -> None:
    _depth(binance_rest)  # the host is open before
    answer = {
        "id": "q",
        "status": 429,
        "error": {
            "code": -1003,
            "msg": "Too much request weight used; current limit is 6000 per 1 MINUTE.",
            "data": {"serverTime": NOW_MS, "retryAfter": NOW_MS + 30_000},
        },
    }
    binance_rest.note_answer(_binance_place(), binance.WsEntry.feedback(answer, NOW_MS))
    with pytest.raises(RateLimited) as refused:
        _depth(binance_rest)
    assert refused.value.retry_after == pytest.approx(30.0)
    assert recorder.paths == ["/api/v3/depth"]  # the second was never sent
    assert binance_rest.stats["429"] == 1


def test_a_binance_ws_418_is_a_ban_of_the_host(
    binance_rest: RestClient, recorder: Recorder
) -> None:
    answer = _payload("binance_spot_wsapi_ip_banned_418.json")
    binance_rest.note_answer(_binance_place(), binance.WsEntry.feedback(answer, NOW_MS))
    with pytest.raises(Banned):
        _depth(binance_rest)
    assert recorder.paths == []


def test_a_binance_ws_order_count_429_stops_orders_not_reads(
    binance_rest: RestClient, recorder: Recorder
) -> None:
    answer = {
        "id": "q",
        "status": 429,
        "error": {
            "code": -1015,
            "msg": "Too many new orders",
            "data": {"retryAfter": NOW_MS + 9000},
        },
    }
    binance_rest.note_answer(_binance_place(), binance.WsEntry.feedback(answer, NOW_MS))
    _depth(binance_rest)
    assert recorder.paths == ["/api/v3/depth"]
    with pytest.raises(RateLimited):
        binance_rest.reserve(_binance_place())


def test_binance_ws_rate_limit_counts_reach_the_limiter(
    binance_rest: RestClient, recorder: Recorder
) -> None:
    answer = {
        "id": "q",
        "status": 200,
        "result": {},
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 6000, "count": 5999},
        ],
    }  # fmt: skip
    binance_rest.note_answer(_binance_place(), binance.WsEntry.feedback(answer, NOW_MS))
    with pytest.raises(RateLimited, match="budget"):
        _depth(binance_rest)  # weight 5 more than the (headroom-kept) minute budget allows
    assert recorder.paths == []


def _bybit_answer(code: int, limit: int, left: int, reset_ms: float) -> dict[str, Any]:
    return {
        "reqId": "r",
        "retCode": code,
        "retMsg": "Too many visits!" if code else "OK",
        "op": "order.create",
        "data": {},
        "header": {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(left),
            "X-Bapi-Limit-Reset-Timestamp": str(int(reset_ms)),
            "Traceid": "t",
            "Timenow": str(int(NOW_MS)),
        },
    }


def test_a_bybit_ws_10006_stops_that_endpoint_until_its_reset(bybit_rest: RestClient) -> None:
    place = bybit.place_request(_bybit_order(), LINEAR)
    cancel = bybit_endpoints.cancel_order("linear", "BTCUSDT", order_link_id="cid-1")
    answer = _bybit_answer(10006, limit=10, left=10, reset_ms=NOW_MS + 1500)
    bybit_rest.note_answer(place, bybit.WsEntry.feedback(answer, NOW_MS))
    with pytest.raises(RateLimited, match="endpoint") as refused:
        bybit_rest.reserve(place)
    assert refused.value.retry_after == pytest.approx(1.5)
    bybit_rest.reserve(cancel)  # another endpoint's budget is not stopped
    assert bybit_rest.stats["10006"] == 1


def test_bybit_ws_usage_headers_reach_the_endpoint_budget(bybit_rest: RestClient) -> None:
    place = bybit.place_request(_bybit_order(), LINEAR)
    answer = _bybit_answer(0, limit=10, left=0, reset_ms=NOW_MS)
    bybit_rest.note_answer(place, bybit.WsEntry.feedback(answer, NOW_MS))
    with pytest.raises(RateLimited, match="budget"):
        bybit_rest.reserve(place)  # all 10 of this second are spent, says the venue


def test_a_bybit_ws_system_protection_code_stops_the_host(
    bybit_rest: RestClient, recorder: Recorder
) -> None:
    place = bybit.place_request(_bybit_order(), LINEAR)
    bybit_rest.note_answer(place, bybit.WsEntry.feedback({"reqId": "r", "retCode": 10429}, 0))
    with pytest.raises(RateLimited):
        bybit_rest.call(bybit_endpoints.tickers("linear", "BTCUSDT"), ANY)
    assert recorder.paths == []


def test_a_bybit_ws_too_frequent_in_session_stops_orders_only(
    bybit_rest: RestClient, recorder: Recorder
) -> None:
    place = bybit.place_request(_bybit_order(), LINEAR)
    bybit_rest.note_answer(place, bybit.WsEntry.feedback({"reqId": "r", "retCode": 20003}, 0))
    bybit_rest.call(bybit_endpoints.tickers("linear", "BTCUSDT"), ANY)
    assert recorder.paths == ["/v5/market/tickers"]
    with pytest.raises(RateLimited, match="order"):
        bybit_rest.reserve(place)
