"""Bybit V5 REST rules over httpx.MockTransport: retCode mapping, X-Bapi-Limit headers, the
403 IP stop, 10006, not-modified codes, clock skew, signing of query and body, builders, and
the rolling windows that model Bybit's limits (bybit.md §2, §3, §11)."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exconn import errors
from exconn.transport.ratelimit import Cost, Limit, WeightLimiter
from exconn.transport.rest import RestClient
from exconn.venues.bybit import endpoints
from exconn.venues.bybit.errors import error_for
from exconn.venues.keys import Credentials

ANY = msgspec.json.Decoder(Any)
KEY, SECRET = "bybit-key-0123456789", "bybit-secret-never-shown"
SERVER_MS = 1_700_000_000_000
ENDPOINT = "POST /v5/order/create"


def envelope(code: int = 0, msg: str = "OK", result: Any = None) -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result or {}, "retExtInfo": {}, "time": 1}


class Host:
    """A mock api.bybit.com: the time endpoint, and ``answer`` for everything else."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        self.answer: Any = lambda r: httpx.Response(200, json=envelope())
        self.skew_ms = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path == "/v5/market/time":
            nano = (SERVER_MS + self.skew_ms) * 1_000_000
            return httpx.Response(200, json=envelope(result={"timeNano": str(nano)}))
        return self.answer(request)

    def sent(self, path: str) -> list[httpx.Request]:
        return [r for r in self.seen if r.url.path == path]


@pytest.fixture
def host() -> Host:
    return Host()


def make(host: Host, **kw: Any) -> RestClient:
    return RestClient(
        "https://api.bybit.test",
        exchange="bybit",
        venue=endpoints.REST,
        signer=endpoints.RestSigner(Credentials(KEY, secret=SECRET)),
        transport=httpx.MockTransport(host),
        wall=kw.pop("wall", lambda: SERVER_MS / 1000),
        **kw,
    )


def order(link: str = "link-1") -> endpoints.Request:
    return endpoints.create_order(
        "spot", "BTCUSDT", "Buy", "Limit", Decimal("0.001"), price=Decimal("10000"),
        order_link_id=link,
    )  # fmt: skip


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (10000, errors.OutcomeUnknown),
        (10001, errors.InvalidOrder),
        (10002, errors.ClockSkew),
        (10003, errors.AuthError),
        (10004, errors.AuthError),
        (10005, errors.AuthError),
        (10006, errors.RateLimited),
        (10007, errors.AuthError),
        (10008, errors.AuthError),
        (10009, errors.AuthError),
        (10010, errors.AuthError),
        (10014, errors.OutcomeUnknown),
        (10016, errors.ExchangeDown),
        (10017, errors.ExchangeError),
        (10018, errors.RateLimited),
        (10024, errors.AuthError),
        (10027, errors.AuthError),
        (10029, errors.AuthError),
        (110001, errors.OrderNotFound),
        (110003, errors.InvalidOrder),
        (110004, errors.InsufficientFunds),
        (110007, errors.InsufficientFunds),
        (110008, errors.OrderNotFound),
        (110009, errors.InvalidOrder),
        (110010, errors.OrderNotFound),
        (110012, errors.InsufficientFunds),
        (110017, errors.InvalidOrder),
        (110020, errors.InvalidOrder),
        (110024, errors.InvalidOrder),
        (110028, errors.InvalidOrder),
        (170121, errors.InvalidSymbol),
        (170130, errors.InvalidOrder),
        (170131, errors.InsufficientFunds),
        (170213, errors.OrderNotFound),
        (110044, errors.InsufficientFunds),
        (110045, errors.InsufficientFunds),
        (170132, errors.InvalidOrder),
        (170133, errors.InvalidOrder),
        (170134, errors.InvalidOrder),
        (170136, errors.InvalidOrder),
        (170137, errors.InvalidOrder),
        (170140, errors.InvalidOrder),
        (170141, errors.InvalidOrder),
        (170148, errors.InvalidOrder),
        (170193, errors.InvalidOrder),
        (170194, errors.InvalidOrder),
    ],
)
def test_every_documented_ret_code_has_its_type(code: int, expected: type) -> None:
    err = error_for(200, code, "venue text", endpoint=ENDPOINT)
    assert type(err) is expected
    assert (err.exchange, err.code, err.venue_message, err.endpoint) == (
        "bybit",
        code,
        "venue text",
        ENDPOINT,
    )
    text = str(err)
    assert text.startswith(f"bybit {ENDPOINT}: ") and f"code {code} 'venue text'" in text


def test_110017_says_what_it_means_now() -> None:
    err = error_for(200, 110017, "orderQty will be truncated to zero", endpoint=ENDPOINT)
    assert "truncated to zero" in str(err) and "qty step" in str(err)


def test_http_statuses_and_unknown_codes() -> None:
    banned = error_for(403, None, "access too frequent", endpoint=ENDPOINT)
    assert isinstance(banned, errors.Banned) and banned.retry_after == 600
    assert isinstance(error_for(401, None, None, endpoint=ENDPOINT), errors.AuthError)
    assert isinstance(error_for(429, None, None, endpoint=ENDPOINT), errors.RateLimited)
    assert isinstance(error_for(502, None, None, endpoint=ENDPOINT), errors.ExchangeDown)
    assert isinstance(error_for(500, 10016, "x", endpoint=ENDPOINT), errors.ExchangeDown)
    unknown = error_for(200, 3400045, "Set margin mode failed", endpoint=ENDPOINT)
    assert type(unknown) is errors.ExchangeError and unknown.code == 3400045
    poor = error_for(200, 110014, "Insufficient available balance to add", endpoint=ENDPOINT)
    assert isinstance(poor, errors.InsufficientFunds)
    size = error_for(200, 110058, "insufficient size of remaining position", endpoint=ENDPOINT)
    assert type(size) is errors.ExchangeError
    symbol = error_for(200, 10001, "Not supported symbols", endpoint=ENDPOINT)
    assert isinstance(symbol, errors.InvalidSymbol)


def test_ret_code_in_a_200_body_raises_the_typed_error(host: Host) -> None:
    host.answer = lambda r: httpx.Response(200, json=envelope(170131, "Balance insufficient"))
    client = make(host)
    with pytest.raises(errors.InsufficientFunds) as info:
        client.call(order(), ANY)
    assert info.value.code == 170131
    assert client.stats["170131"] == 1
    assert SECRET not in str(info.value) + repr(info.value)


@pytest.mark.parametrize("code", [110025, 110026, 110043])
def test_not_modified_codes_are_success(host: Host, code: int) -> None:
    host.answer = lambda r: httpx.Response(200, json=envelope(code, "not modified"))
    client = make(host)
    body = client.signed_request(
        "POST",
        "/v5/position/set-leverage",
        {"category": "linear", "symbol": "BTCUSDT", "buyLeverage": "5", "sellLeverage": "5"},
        ANY,
        is_order=False,
    )
    assert body["retCode"] == code
    assert client.stats["not_modified"] == 1


# ------------------------------------------------------------------------------ limits


def limit_headers(limit: int, left: int, reset: int) -> dict[str, str]:
    return {
        "X-Bapi-Limit": str(limit),
        "X-Bapi-Limit-Status": str(left),
        "X-Bapi-Limit-Reset-Timestamp": str(reset),
    }


def test_limit_headers_drive_the_endpoints_budget(host: Host) -> None:
    left = {"/v5/order/create": (20, 0), "/v5/account/wallet-balance": (50, 49)}
    host.answer = lambda r: httpx.Response(
        200, json=envelope(), headers=limit_headers(*left[r.url.path], SERVER_MS)
    )
    client = make(host, max_wait=0.05)
    client.call(order("a"), ANY)
    # The endpoint's 20 are spent (someone else used 19): the next waits a second, which is
    # more than this client may; another endpoint's budget is untouched.
    with pytest.raises(errors.RateLimited, match="not sent"):
        client.call(order("b"), ANY)
    client.call(endpoints.wallet_balance(), ANY)
    assert len(host.sent("/v5/order/create")) == 1
    learned = {lim.kind: lim.limit for lim in client.limits}
    assert learned["UID /v5/order/create spot"] == 20
    # X-Bapi-Limit replaces the default: an account with a higher limit gets to use it.
    assert learned["UID /v5/account/wallet-balance"] == 50


def test_10006_holds_that_endpoint_until_the_reset(host: Host) -> None:
    now = {"s": SERVER_MS / 1000}
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # time passes for the client only
        slept.append(seconds)
        now["s"] += seconds

    host.answer = lambda r: httpx.Response(
        200,
        json=envelope(10006, "Too many visits!"),
        headers=limit_headers(20, 0, SERVER_MS + 1500),
    )
    client = make(host, wall=lambda: now["s"], sleep=sleep, max_wait=1.0)
    with pytest.raises(errors.RateLimited) as info:
        client.call(order("a"), ANY)
    assert info.value.code == 10006
    assert info.value.retry_after == pytest.approx(1.5, abs=0.01)
    host.answer = lambda r: httpx.Response(200, json=envelope())
    # Longer than this client may wait: refused unsent; other endpoints go on meanwhile.
    with pytest.raises(errors.RateLimited, match="not sent") as refused:
        client.call(order("b"), ANY)
    assert refused.value.retry_after == pytest.approx(1.5, abs=0.01)
    assert len(host.sent("/v5/order/create")) == 1
    client.call(endpoints.wallet_balance(), ANY)
    client.call(endpoints.orderbook("spot", "BTCUSDT"), ANY)
    # Within max_wait the request waits for the reset, then goes once.
    client.max_wait = 30.0
    client.call(order("c"), ANY)
    assert slept and sum(slept) == pytest.approx(1.5, abs=0.01)
    assert len(host.sent("/v5/order/create")) == 2


def test_403_stops_all_traffic_to_the_host_for_ten_minutes(host: Host) -> None:
    now = {"s": SERVER_MS / 1000}
    host.answer = lambda r: httpx.Response(403, text="access too frequent")
    client = make(host, wall=lambda: now["s"])
    with pytest.raises(errors.Banned) as info:
        client.call(endpoints.tickers("spot"), ANY)
    assert info.value.retry_after == 600
    assert "IP rate limit" in str(info.value)
    host.answer = lambda r: httpx.Response(200, json=envelope())
    sent = len(host.seen)
    for request in (endpoints.server_time(), order(), endpoints.wallet_balance()):
        with pytest.raises(errors.Banned, match="not sent"):
            client.call(request, ANY)
    assert len(host.seen) == sent
    now["s"] += 600.1
    client.call(endpoints.tickers("spot"), ANY)
    assert client.stats["403"] == 1


def test_costs_name_the_ip_and_the_endpoint_budgets() -> None:
    venue = endpoints.REST
    public = venue.cost("GET", "/v5/market/orderbook", {"category": "spot"})
    assert (public.raw, public.kinds) == (1, ())
    linear = venue.cost("POST", "/v5/order/create", {"category": "linear"})
    spot = venue.cost("POST", "/v5/order/create", {"category": "spot"})
    assert [(lim.kind, lim.limit, units) for lim, units in linear.extra] == [
        ("UID /v5/order/create linear", 10, 1)
    ]
    assert [lim.limit for lim, _ in spot.extra] == [20]
    batch = venue.cost(
        "POST", "/v5/order/create-batch", {"category": "linear", "request": [{}] * 4}
    )
    assert batch.of("UID /v5/order/create-batch linear") == 4
    other = venue.cost("GET", "/v5/asset/coin/query-info", {})
    assert other.kinds == ("UID /v5/asset/coin/query-info",)
    assert all(lim.rolling and lim.per_account for lim, _ in linear.extra)
    (ip,) = venue.limits()
    assert (ip.interval_ms, ip.limit, ip.rolling, ip.per_account) == (5000, 600, True, False)


ORDERS_PER_S = Limit("UID x", 1000, 10, rolling=True, per_account=True)
ONE = Cost(weight=0, raw=0, extra=((ORDERS_PER_S, 1),))


def test_a_rolling_window_frees_as_its_oldest_units_leave() -> None:
    lim = WeightLimiter([], headroom=1.0)
    t0 = 1_000_000.0
    for i in range(10):
        assert lim.try_reserve(ONE, t0 + i * 50) == 0.0
    wait = lim.try_reserve(ONE, t0 + 500)
    # The first unit (slot of t0) leaves once a whole window plus a slot has passed.
    assert wait == pytest.approx(t0 + 1100 - (t0 + 500))
    assert lim.try_reserve(ONE, t0 + 500 + wait) == 0.0


@given(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 3)), min_size=1, max_size=150))
def test_never_more_than_the_budget_in_any_rolling_window(steps: list[tuple[int, int]]) -> None:
    lim = WeightLimiter([ORDERS_PER_S], headroom=1.0)
    now = 5_000_000.0
    sent: list[tuple[float, int]] = []
    for advance, units in steps:
        now += advance
        cost = Cost(weight=0, raw=0, extra=((ORDERS_PER_S, units),))
        if lim.try_reserve(cost, now) == 0.0:
            sent.append((now, units))
    for t, _ in sent:
        window = sum(u for s, u in sent if t - 1000 < s <= t)
        assert window <= 10


# ------------------------------------------------------------------------------ clock, orders


def test_10002_on_a_read_resyncs_and_retries_once(host: Host) -> None:
    calls = {"n": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(200, json=envelope(10002, "invalid request, recv_window"))
        return httpx.Response(200, json=envelope(result={"list": []}))

    host.answer = answer
    client = make(host)
    assert client.call(endpoints.wallet_balance(), ANY)["result"] == {"list": []}
    assert (client.stats["clock_skew_rejections"], client.stats["retries"]) == (1, 1)


def test_10002_on_an_order_is_clock_skew_not_retried(host: Host) -> None:
    host.answer = lambda r: httpx.Response(200, json=envelope(10002, "recv_window"))
    client = make(host)
    with pytest.raises(errors.ClockSkew) as info:
        client.call(order(), ANY)
    assert info.value.code == 10002
    assert len(host.sent("/v5/order/create")) == 1


@pytest.mark.parametrize(
    "answer",
    [
        lambda r: httpx.Response(500, json=envelope(10016, "Server error.")),
        lambda r: httpx.Response(200, json=envelope(10000, "Server Timeout")),
        lambda r: httpx.Response(502, text="bad gateway"),
    ],
)
def test_doubtful_order_answers_are_outcome_unknown_with_the_link_id(host: Host, answer) -> None:
    host.answer = answer
    client = make(host)
    with pytest.raises(errors.OutcomeUnknown) as info:
        client.call(order("link-7"), ANY)
    assert info.value.client_order_id == "link-7"
    assert len(host.sent("/v5/order/create")) == 1


def test_a_new_order_without_link_id_is_refused_but_cancel_by_order_id_goes(host: Host) -> None:
    client = make(host)
    with pytest.raises(errors.InvalidOrder):
        client.signed_request(
            "POST", "/v5/order/create", {"category": "spot", "symbol": "BTCUSDT"}, ANY,
            is_order=True,
        )  # fmt: skip
    client.call(endpoints.cancel_order("spot", "BTCUSDT", order_id="123"), ANY)
    assert len(host.sent("/v5/order/create")) == 0


# ------------------------------------------------------------------------------ signing


def test_a_post_signs_the_exact_json_body_sent(host: Host) -> None:
    client = make(host)
    client.call(order(), ANY)
    request = host.sent("/v5/order/create")[0]
    body = request.content.decode()
    assert json.loads(body) == {
        "category": "spot",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.001",
        "price": "10000",
        "orderLinkId": "link-1",
    }
    assert request.url.query == b""
    assert request.headers["Content-Type"] == "application/json"
    h = request.headers
    payload = h["X-BAPI-TIMESTAMP"] + KEY + h["X-BAPI-RECV-WINDOW"] + body
    assert (
        h["X-BAPI-SIGN"] == hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    )
    assert (h["X-BAPI-API-KEY"], h["X-BAPI-RECV-WINDOW"]) == (KEY, "5000")


def test_a_get_signs_the_query_as_sent(host: Host) -> None:
    client = make(host)
    client.call(endpoints.open_orders("linear", symbol="BTCUSDT", limit=50), ANY)
    request = host.sent("/v5/order/realtime")[0]
    query = request.url.query.decode()
    assert query == "category=linear&symbol=BTCUSDT&limit=50"
    assert request.content == b""
    h = request.headers
    payload = h["X-BAPI-TIMESTAMP"] + KEY + h["X-BAPI-RECV-WINDOW"] + query
    assert (
        h["X-BAPI-SIGN"] == hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    )


def test_signer_rules_and_no_secret_in_reprs(host: Host) -> None:
    creds = Credentials(KEY, secret=SECRET)
    signer = endpoints.RestSigner(creds)
    assert SECRET not in repr(signer) and KEY not in repr(signer)
    with pytest.raises(errors.ConfigError):
        endpoints.RestSigner(creds, recv_window_ms=0)
    ed = Credentials(KEY, private_key_pem=_ED25519_PEM)
    with pytest.raises(errors.ConfigError, match="Ed25519"):
        endpoints.RestSigner(ed)


_ED25519_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n"
)


def test_server_time_is_read_from_time_nano(host: Host) -> None:
    host.skew_ms = 2000
    client = make(host)
    assert client.sync_clock() == pytest.approx(2000, abs=1)


# ------------------------------------------------------------------------------ builders


def test_builders_check_what_bybit_would_refuse() -> None:
    with pytest.raises(errors.InvalidOrder):
        endpoints.create_order(
            "spot", "BTCUSDT", "buy", "Limit", Decimal("1"), price=Decimal("1"), order_link_id="x"
        )
    with pytest.raises(errors.InvalidOrder):
        endpoints.create_order(
            "spot", "BTCUSDT", "Buy", "Limit", Decimal("1"), order_link_id="no price"
        )
    with pytest.raises(errors.InvalidOrder):
        endpoints.create_order("spot", "BTCUSDT", "Buy", "Market", "1", order_link_id="x" * 37)
    with pytest.raises(TypeError):
        endpoints.create_order("spot", "BTCUSDT", "Buy", "Market", 0.1, order_link_id="x")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidOrder):
        endpoints.cancel_all("linear")
    with pytest.raises(errors.InvalidOrder):
        endpoints.cancel_order("spot", "BTCUSDT")
    with pytest.raises(ValueError):
        endpoints.positions("spot")
    with pytest.raises(ValueError):
        endpoints.tickers("futures")
    req = endpoints.create_order(
        "linear", "BTCUSDT", "Sell", "Market", Decimal("1E-3"), order_link_id="a-1",
        reduce_only=True, position_idx=0,
    )  # fmt: skip
    assert req.params["qty"] == "0.001" and req.params["reduceOnly"] is True
    assert (req.signed, req.is_order, req.method) == (True, True, "POST")
    assert endpoints.cancel_all("spot").params == {"category": "spot"}
    assert endpoints.instruments_info("linear", limit=1000).params == {
        "category": "linear",
        "limit": "1000",
    }
