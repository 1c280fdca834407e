"""Request budgets, 429/418 stops and the circuit breaker against the simulator."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from exconn import errors
from exconn.sim import BinanceSpotSim, BinanceUsdmSim
from exconn.sim.limits import RateLimit
from exconn.transport.rest import RestClient
from exconn.venues.binance import endpoints
from exconn.venues.binance.errors import error_for
from exconn.venues.binance.wire import error_decoder
from exconn.venues.keys import Credentials
from tests.chaos.binance_rest_support import ANY, ManualWall, fast_breaker, spot_client

# Test-sized: one second windows, so a burst must wait for several resets in a few seconds.
TEST_LIMITS = (
    RateLimit("REQUEST_WEIGHT", "SECOND", 1, 1500),
    RateLimit("ORDERS", "SECOND", 10, 300),
    RateLimit("ORDERS", "MINUTE", 1, 1200),
)


def test_burst_of_2000_mixed_requests_gets_no_429() -> None:
    with BinanceUsdmSim(rate_limits=TEST_LIMITS) as sim:
        key, secret = sim.api_keys()[0]
        client = RestClient(
            sim.rest_url,
            exchange="binance",
            error_for=error_for,
            error_decoder=error_decoder,
            venue=endpoints.LINEAR_REST,
            signer=endpoints.RestSigner(Credentials(key, secret=secret)),
        )
        try:
            # Seeded from exchangeInfo, as in production.
            info = client.get("/fapi/v1/exchangeInfo", {}, ANY)
            client.seed_limits(endpoints.rate_limits(info["rateLimits"]))
            assert {(lim.kind, lim.suffix, lim.limit) for lim in client.limits} == {
                ("REQUEST_WEIGHT", "1S", 1500),
                ("ORDERS", "10S", 300),
                ("ORDERS", "1M", 1200),
            }
            rng = random.Random(7)
            mix = [
                ("GET", "/fapi/v1/ping", {}, False),
                ("GET", "/fapi/v1/time", {}, False),
                ("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": "100"}, False),
                ("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": "1000"}, False),
                ("GET", "/fapi/v1/trades", {"symbol": "BTCUSDT"}, False),
                ("GET", "/fapi/v1/ticker/bookTicker", {}, False),
                ("GET", "/fapi/v2/balance", {}, True),
                ("GET", "/fapi/v1/openOrders", {}, True),
            ]
            jobs = [rng.choice(mix) for _ in range(2000)]

            def run(job: tuple) -> None:
                method, path, params, signed = job
                if signed:
                    client.signed_request(method, path, params, ANY, is_order=False)
                else:
                    client.request(method, path, params, ANY)

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(run, jobs))  # any error (429 included) propagates here
            assert client.stats["429"] == 0
            assert client.stats["418"] == 0
            assert client.stats["budget_waits"] > 0  # the burst really was over one window
        finally:
            client.close()


@pytest.fixture
def sim():
    with BinanceSpotSim(accounts=1) as running:
        yield running


def _requests(sim: BinanceSpotSim) -> int:
    return sim.stats()["rest_requests"]


@pytest.mark.parametrize(
    ("kind", "retry_after", "error"),
    [("http_429", 1, errors.RateLimited), ("http_418", 2, errors.Banned)],
)
def test_429_and_418_stop_all_traffic_for_retry_after_then_resume(
    sim: BinanceSpotSim, kind: str, retry_after: int, error: type
) -> None:
    wall = ManualWall()
    client = spot_client(sim.rest_url, wall=wall)
    try:
        sim.add_fault(kind, endpoint="GET /api/v3/depth", count=1, retry_after=retry_after)
        with pytest.raises(error) as info:
            client.get("/api/v3/depth", {"symbol": "BTCUSDT"}, ANY)
        assert info.value.retry_after == retry_after
        sent = _requests(sim)
        # Every endpoint of the host is refused without sending while the stop lasts.
        for path in ("/api/v3/ping", "/api/v3/time", "/api/v3/depth"):
            with pytest.raises(error) as refused:
                client.get(path, {"symbol": "BTCUSDT"} if "depth" in path else {}, ANY)
            assert 0 < refused.value.retry_after <= retry_after
        wall.shift = retry_after - 0.05
        with pytest.raises(error):
            client.get("/api/v3/ping", {}, ANY)
        assert _requests(sim) == sent
        wall.shift = retry_after + 0.05
        assert client.get("/api/v3/depth", {"symbol": "BTCUSDT"}, ANY)["bids"]
        assert _requests(sim) == sent + 1
    finally:
        client.close()


def test_breaker_opens_on_repeated_5xx_then_half_opens(sim: BinanceSpotSim) -> None:
    breaker = fast_breaker(fail_max=3)
    client = spot_client(sim.rest_url, breaker=breaker)
    try:
        sim.add_fault("http_5xx", endpoint="GET /api/v3/depth", count=3, status=503)
        for _ in range(3):
            with pytest.raises(errors.ExchangeDown) as info:
                client.get("/api/v3/depth", {"symbol": "BTCUSDT"}, ANY)
            assert info.value.code == -1008  # the venue's answer, it was sent
        assert breaker.state == "open"
        sent = _requests(sim)
        with pytest.raises(errors.ExchangeDown, match="not sent"):
            client.get("/api/v3/ping", {}, ANY)
        assert _requests(sim) == sent
        assert client.stats["refused_breaker"] == 1
        # Reset timeout elapsed (moved back instead of slept): one trial call goes through.
        breaker.storage.opened_at = breaker.storage.opened_at - timedelta(seconds=31)
        assert client.get("/api/v3/ping", {}, ANY) == {}
        assert _requests(sim) == sent + 1
        assert breaker.state == "closed"
    finally:
        client.close()


def test_breaker_opened_by_one_failure_refuses_other_endpoints(sim: BinanceSpotSim) -> None:
    breaker = fast_breaker(fail_max=1)
    client = spot_client(sim.rest_url, breaker=breaker)
    try:
        sim.add_fault("http_5xx", endpoint="GET /api/v3/ping", count=1, status=500)
        with pytest.raises(errors.ExchangeDown):
            client.get("/api/v3/ping", {}, ANY)
        assert breaker.state == "open"
        sent = _requests(sim)
        with pytest.raises(errors.ExchangeDown, match="not sent"):
            client.get("/api/v3/time", {}, ANY)
        assert _requests(sim) == sent
    finally:
        client.close()
