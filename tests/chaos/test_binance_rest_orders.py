"""Order-entry outcomes: never retried, unknown outcomes carry the client order id, -1021
retried once on reads only."""

from __future__ import annotations

import pytest

from exconn import errors
from exconn.sim import BinanceSpotSim
from tests.chaos.binance_rest_support import ANY, credentials, order_params, spot_client

ORDER = "POST /api/v3/order"


@pytest.fixture
def sim():
    with BinanceSpotSim(accounts=1) as running:
        yield running


@pytest.fixture
def client(sim: BinanceSpotSim):
    c = spot_client(sim.rest_url, credentials(sim.api_keys(0), "ed25519"))
    c.sync_clock()
    yield c
    c.close()


def _requests(sim: BinanceSpotSim) -> int:
    return sim.stats()["rest_requests"]


def _status(client, cid: str) -> str:
    order = client.signed_request(
        "GET",
        "/api/v3/order",
        {"symbol": "BTCUSDT", "origClientOrderId": cid},
        ANY,
        is_order=False,
    )
    return order["status"]


@pytest.mark.parametrize(
    ("kind", "params", "executed"),
    [
        ("error_after_accept", {}, True),  # 500 -1006, the order exists
        ("timeout_after_accept", {"delay_s": 0}, True),  # 408 -1007, the order exists
        ("http_5xx", {"status": 503}, False),  # 503, not executed
        ("http_5xx", {"status": 500}, False),
    ],
)
def test_doubtful_order_answers_are_outcome_unknown_and_sent_once(
    sim: BinanceSpotSim, client, kind: str, params: dict, executed: bool
) -> None:
    cid = f"oc-{kind}-{params.get('status', 0)}"
    sim.add_fault(kind, endpoint=ORDER, count=1, **params)
    before = _requests(sim)
    with pytest.raises(errors.OutcomeUnknown) as info:
        client.signed_request("POST", "/api/v3/order", list(order_params(cid)), ANY, is_order=True)
    assert info.value.client_order_id == cid
    assert _requests(sim) - before == 1  # one send, no retry
    assert client.stats["retries"] == 0
    if executed:
        assert _status(client, cid) == "NEW"
    else:
        with pytest.raises(errors.OrderNotFound):
            _status(client, cid)


def test_timeout_after_sending_an_order_is_outcome_unknown(sim: BinanceSpotSim) -> None:
    client = spot_client(sim.rest_url, credentials(sim.api_keys(0), "hmac"), timeout=0.3)
    try:
        client.sync_clock()
        sim.add_fault("timeout_after_accept", endpoint=ORDER, count=1, delay_s=3)
        before = _requests(sim)
        with pytest.raises(errors.OutcomeUnknown) as info:
            client.signed_request(
                "POST", "/api/v3/order", list(order_params("oc-timeout")), ANY, is_order=True
            )
        assert info.value.client_order_id == "oc-timeout"
        assert _requests(sim) - before == 1
        assert _status(client, "oc-timeout") == "NEW"  # it was executed: query, never resend
    finally:
        client.close()


def test_clock_skew_on_a_read_resyncs_and_retries_once(sim: BinanceSpotSim, client) -> None:
    sim.add_fault("clock_skew", skew_ms=-3000)  # server behind: our timestamps are ahead
    before = _requests(sim)
    account = client.signed_request("GET", "/api/v3/account", {}, ANY, is_order=False)
    assert "balances" in account
    assert client.stats["clock_skew_rejections"] == 1
    assert client.stats["retries"] == 1
    # rejected read + a fresh clock sync + exactly one retry
    assert _requests(sim) - before == 1 + 3 + 1
    assert client.clock.offset_ms == pytest.approx(-3000, abs=100)


def test_clock_skew_on_an_order_is_typed_and_not_retried(sim: BinanceSpotSim, client) -> None:
    sim.add_fault("clock_skew", skew_ms=-3000)
    before = _requests(sim)
    with pytest.raises(errors.ClockSkew) as info:
        client.signed_request(
            "POST", "/api/v3/order", list(order_params("oc-skew")), ANY, is_order=True
        )
    assert info.value.code == -1021
    assert client.stats["retries"] == 0
    assert _requests(sim) - before == 1 + 3  # the order once, then the clock resync
    with pytest.raises(errors.OrderNotFound):
        _status(client, "oc-skew")  # the clock is fixed: the query goes through


@pytest.mark.parametrize("skew_ms", [2000, -2000])
def test_two_second_skew_is_absorbed(sim: BinanceSpotSim, skew_ms: int) -> None:
    sim.add_fault("clock_skew", skew_ms=skew_ms)
    client = spot_client(sim.rest_url, credentials(sim.api_keys(0), "hmac"))
    try:
        for i in range(5):
            client.signed_request("GET", "/api/v3/account", {}, ANY, is_order=False)
            client.signed_request(
                "POST",
                "/api/v3/order",
                list(order_params(f"skew-{skew_ms}-{i}")),
                ANY,
                is_order=True,
            )
        assert client.stats["clock_skew_rejections"] == 0
        assert client.clock.offset_ms == pytest.approx(skew_ms, abs=100)
    finally:
        client.close()


def test_skew_appearing_mid_session_is_absorbed_by_the_periodic_resync(
    sim: BinanceSpotSim,
) -> None:
    client = spot_client(sim.rest_url, credentials(sim.api_keys(0), "hmac"))
    try:
        client.signed_request("GET", "/api/v3/account", {}, ANY, is_order=False)
        sim.add_fault("clock_skew", skew_ms=-2000)
        client.sync_clock()  # what the periodic refresh (resync_interval) does
        client.signed_request("GET", "/api/v3/account", {}, ANY, is_order=False)
        assert client.stats["clock_skew_rejections"] == 0
    finally:
        client.close()


def test_an_order_without_client_id_is_refused_before_sending(sim: BinanceSpotSim, client) -> None:
    before = _requests(sim)
    params = [p for p in order_params("x") if p[0] != "newClientOrderId"]
    with pytest.raises(errors.InvalidOrder):
        client.signed_request("POST", "/api/v3/order", params, ANY, is_order=True)
    assert _requests(sim) == before
