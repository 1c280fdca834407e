"""RestClient over httpx.MockTransport: signed bytes, order outcomes, breaker on timeouts."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import msgspec
import pytest

from exconn import errors
from exconn.transport.breaker import HostBreaker
from exconn.transport.rest import RestClient
from exconn.venues.binance import endpoints
from exconn.venues.binance.errors import error_for
from exconn.venues.binance.wire import error_decoder
from exconn.venues.keys import Credentials

ANY = msgspec.json.Decoder(Any)
KEY, SECRET = "k" * 64, "s3cr3t-value-never-shown"
SERVER_MS = 1_700_000_000_000


def make(handler, **kw: Any) -> RestClient:
    return RestClient(
        "http://venue.test",
        exchange="binance",
        error_for=error_for,
        error_decoder=error_decoder,
        venue=endpoints.SPOT_REST,
        signer=endpoints.RestSigner(Credentials(KEY, secret=SECRET)),
        transport=httpx.MockTransport(handler),
        wall=lambda: SERVER_MS / 1000,
        **kw,
    )


def routes(on_other):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": SERVER_MS})
        return on_other(request)

    return handler, seen


def test_signature_is_last_and_covers_exactly_the_bytes_sent() -> None:
    handler, seen = routes(lambda r: httpx.Response(200, json={"ok": True}))
    client = make(handler)
    params = [("symbol", "BTCUSDT"), ("note", "a b/é+&="), ("newClientOrderId", "c1")]
    client.signed_request("POST", "/api/v3/order", params, ANY, is_order=True)
    request = seen[-1]
    raw = request.url.query.decode()
    payload, _, signature = raw.rpartition("&signature=")
    assert signature and "&" not in signature
    assert payload.startswith("symbol=BTCUSDT&note=a%20b%2F%C3%A9%2B%26%3D&newClientOrderId=c1")
    assert "&recvWindow=5000&timestamp=" in payload
    expected = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    assert signature == expected
    assert request.headers["X-MBX-APIKEY"] == KEY
    assert request.content == b""


def test_recv_window_bounds() -> None:
    creds = Credentials(KEY, secret=SECRET)
    with pytest.raises(errors.ConfigError):
        endpoints.RestSigner(creds, recv_window_ms=60_001)
    assert endpoints.RestSigner(creds, recv_window_ms=60_000).recv_window_ms == 60_000
    assert SECRET not in repr(endpoints.RestSigner(creds))


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset"), httpx.WriteError("x")]
)
def test_order_failure_after_sending_is_outcome_unknown(exc: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    handler, seen = routes(fail)
    client = make(handler)
    params = [("symbol", "BTCUSDT"), ("newClientOrderId", "cid-7")]
    with pytest.raises(errors.OutcomeUnknown) as info:
        client.signed_request("POST", "/api/v3/order", params, ANY, is_order=True)
    assert info.value.client_order_id == "cid-7"
    assert sum(r.url.path == "/api/v3/order" for r in seen) == 1
    assert SECRET not in str(info.value) + repr(info.value)


def test_order_not_sent_on_connect_error_is_exchange_down() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    handler, _ = routes(fail)
    client = make(handler)
    with pytest.raises(errors.ExchangeDown, match="not sent"):
        client.signed_request(
            "POST", "/api/v3/order", [("newClientOrderId", "c")], ANY, is_order=True
        )


def test_read_timeouts_open_the_breaker() -> None:
    calls = {"n": 0}

    def fail(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        raise httpx.ReadTimeout("slow")

    client = make(fail, breaker=HostBreaker("venue.test", fail_max=2))
    for _ in range(2):
        with pytest.raises(errors.ExchangeDown, match="timed out"):
            client.get("/api/v3/ping", {}, ANY)
    with pytest.raises(errors.ExchangeDown, match="not sent"):
        client.get("/api/v3/ping", {}, ANY)
    assert calls["n"] == 2


def test_minus_1006_on_a_read_is_not_an_unknown_outcome() -> None:
    handler, _ = routes(
        lambda r: httpx.Response(500, json={"code": -1006, "msg": "Unexpected response"})
    )
    client = make(handler)
    with pytest.raises(errors.ExchangeDown) as info:
        client.signed_request("GET", "/api/v3/account", {}, ANY, is_order=False)
    assert info.value.code == -1006


def test_local_budget_wait_longer_than_max_wait_raises_without_sending() -> None:
    handler, seen = routes(
        lambda r: httpx.Response(200, json={}, headers={"X-MBX-USED-WEIGHT-1M": "6000"})
    )
    client = make(handler, max_wait=0.5)
    client.get("/api/v3/ping", {}, ANY)
    with pytest.raises(errors.RateLimited, match="not sent"):
        client.get("/api/v3/ping", {}, ANY)
    assert len(seen) == 1


def test_public_get_keeps_working_without_a_venue() -> None:
    client = RestClient(
        "http://venue.test",
        exchange="binance",
        error_for=error_for,
        error_decoder=error_decoder,
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"x": 1})),
    )
    assert client.get("/api/v3/ping", {"a": "b"}, ANY) == {"x": 1}


def test_the_timestamp_is_signed_after_the_budget_wait() -> None:
    now = {"s": SERVER_MS / 1000}

    def sleep(seconds: float) -> None:  # time passes for the client only
        now["s"] += seconds

    handler, seen = routes(lambda r: httpx.Response(200, json={"ok": True}))
    client = RestClient(
        "http://venue.test",
        exchange="binance",
        venue=endpoints.SPOT_REST,
        signer=endpoints.RestSigner(Credentials(KEY, secret=SECRET)),
        transport=httpx.MockTransport(handler),
        wall=lambda: now["s"],
        sleep=sleep,
    )
    client.seed_limits([("ORDERS", "SECOND", 10, 1)])  # one order per 10 s
    for cid in ("c1", "c2"):
        params = [("symbol", "BTCUSDT"), ("newClientOrderId", cid)]
        client.signed_request("POST", "/api/v3/order", params, ANY, is_order=True)
    first, second = (r for r in seen if r.url.path == "/api/v3/order")
    stamp = [int(r.url.params["timestamp"]) for r in (first, second)]
    assert now["s"] * 1000 - SERVER_MS >= 10_000  # the second order waited for the window
    assert stamp[1] - stamp[0] >= 10_000  # and was stamped after the wait, not before it


def test_a_base_url_path_prefixes_every_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/gateway/api/v3/time":
            return httpx.Response(200, json={"serverTime": SERVER_MS})
        return httpx.Response(200, json={"ok": True})

    client = RestClient(
        "http://venue.test/gateway",
        exchange="binance",
        venue=endpoints.SPOT_REST,
        signer=endpoints.RestSigner(Credentials(KEY, secret=SECRET)),
        transport=httpx.MockTransport(handler),
        wall=lambda: SERVER_MS / 1000,
    )
    params = [("symbol", "BTCUSDT"), ("newClientOrderId", "c1")]
    client.signed_request("POST", "/api/v3/order", params, ANY, is_order=True)
    assert [r.url.path for r in seen] == [
        "/gateway/api/v3/time",
        "/gateway/api/v3/time",
        "/gateway/api/v3/time",
        "/gateway/api/v3/order",
    ]
    assert seen[-1].url.host == "venue.test"


def test_no_cookie_is_kept_or_sent() -> None:
    handler, seen = routes(
        lambda r: httpx.Response(200, json={"ok": True}, headers={"Set-Cookie": "sid=abc"})
    )
    client = make(handler)
    client.request("GET", "/api/v3/ping", [], ANY)
    client.request("GET", "/api/v3/ping", [], ANY)
    assert [r.headers.get("Cookie") for r in seen] == [None, None]
