"""Bybit request budgets, the 10006 endpoint stop and the 403 IP stop against the simulator
(600 requests per 5 s per IP; per-UID limits per endpoint; bybit.md §3)."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from exconn import errors
from exconn.sim import BybitSim
from exconn.venues.bybit import endpoints
from tests.chaos.binance_rest_support import ManualWall
from tests.chaos.bybit_rest_support import (
    ANY,
    bybit_client,
    hmac_credentials,
    order_status,
    requests_answered,
    resting_order,
    resting_price,
)


@pytest.fixture
def sim():
    with BybitSim() as running:
        yield running


def test_burst_of_mixed_requests_over_the_uid_limits_gets_no_rate_limit_error(
    sim: BybitSim,
) -> None:
    client = bybit_client(sim.rest_url, hmac_credentials(sim))
    try:
        price = resting_price(client)
        rng = random.Random(5)
        reads = [
            endpoints.orderbook("spot", "BTCUSDT", 50),
            endpoints.recent_trade("linear", "BTCUSDT"),
            endpoints.tickers("linear"),
            endpoints.server_time(),
            endpoints.wallet_balance(),
            endpoints.open_orders("spot"),
            endpoints.executions("spot"),
            endpoints.positions("linear", settle_coin="USDT"),
        ]
        jobs: list[Any] = [rng.choice(reads) for _ in range(300)]
        # 60 new spot orders: three seconds' worth of the 20/s per-UID limit, sent at once.
        jobs += [resting_order(f"burst-{i}", price) for i in range(60)]
        rng.shuffle(jobs)
        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(lambda job: client.call(job, ANY), jobs))  # any error propagates
        assert client.stats["10006"] == 0 and client.stats["403"] == 0
        assert client.stats["budget_waits"] > 0  # the burst really was over a limit
        assert order_status(client, "burst-59") == "New"
        client.call(endpoints.cancel_all("spot"), ANY)
    finally:
        client.close()


def test_public_burst_over_the_ip_limit_waits_instead_of_a_403(sim: BybitSim) -> None:
    client = bybit_client(sim.rest_url)
    try:
        jobs = [endpoints.orderbook("spot", "ETHUSDT", 1)] * 650  # > 600 in 5 s per IP
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda job: client.call(job, ANY), jobs))
        assert client.stats["403"] == 0
        assert client.stats["budget_waits"] > 0
    finally:
        client.close()


def test_rate_limit_code_holds_that_endpoint_until_the_reset_then_resumes(
    sim: BybitSim,
) -> None:
    client = bybit_client(sim.rest_url, hmac_credentials(sim), max_wait=0.2)
    try:
        price = resting_price(client)
        sim.rate_limit(endpoint="POST /v5/order/create")
        with pytest.raises(errors.RateLimited) as info:
            client.call(resting_order("rl-1", price), ANY)
        assert info.value.code == 10006
        reset = info.value.retry_after
        assert reset is not None and 0.2 < reset <= 1.1  # X-Bapi-Limit-Reset-Timestamp
        sent = requests_answered(sim)
        # The reset is further away than this client may wait: refused without sending.
        with pytest.raises(errors.RateLimited, match="not sent"):
            client.call(resting_order("rl-2", price), ANY)
        assert requests_answered(sim) == sent
        client.call(endpoints.wallet_balance(), ANY)  # another endpoint's budget is intact
        # A client that may wait holds the order until the reset, then sends it once.
        client.max_wait = 5.0
        client.call(resting_order("rl-3", price), ANY)
        assert client.stats["budget_waits"] >= 1
        assert requests_answered(sim) == sent + 2
        assert order_status(client, "rl-3") == "New"
        assert order_status(client, "rl-1") is None  # refused, never placed
    finally:
        client.close()


def test_403_stops_all_traffic_to_the_host_then_resumes(sim: BybitSim) -> None:
    wall = ManualWall()
    client = bybit_client(sim.rest_url, hmac_credentials(sim), wall=wall)
    try:
        price = resting_price(client)
        sim.ip_limit(endpoint="GET /v5/market/orderbook")
        with pytest.raises(errors.Banned) as info:
            client.call(endpoints.orderbook("spot", "BTCUSDT"), ANY)
        assert info.value.retry_after == 600
        sent = requests_answered(sim)
        for request in (
            endpoints.server_time(),
            endpoints.wallet_balance(),
            resting_order("ip-1", price),
        ):
            with pytest.raises(errors.Banned, match="not sent"):
                client.call(request, ANY)
        assert requests_answered(sim) == sent
        wall.shift = 600.5  # the ban lifts after 10 minutes
        client.call(endpoints.tickers("spot", "BTCUSDT"), ANY)
        client.sync_clock()  # the shifted wall: timestamps must follow the server's clock
        client.call(resting_order("ip-2", price), ANY)
        assert order_status(client, "ip-2") == "New"
        assert client.stats["403"] == 1
    finally:
        client.close()
