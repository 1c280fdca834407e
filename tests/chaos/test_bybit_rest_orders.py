"""Bybit order entry against the simulator: unknown outcomes carry the orderLinkId and are
sent once, clock skew is absorbed, auth failures are typed, not-modified is success, and both
key kinds sign (bybit.md §2, §5, §11, §12)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from exconn import errors
from exconn.sim import BybitSim
from exconn.venues.bybit import endpoints
from exconn.venues.keys import Credentials
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


@pytest.fixture
def client(sim: BybitSim):
    c = bybit_client(sim.rest_url, hmac_credentials(sim))
    c.sync_clock()
    yield c
    c.close()


@pytest.mark.parametrize(
    ("inject", "executed"),
    [
        (lambda sim: sim.error_after_accept(status=500), True),  # 500 10016, the order exists
        (lambda sim: sim.error_after_accept(status=502), True),
        (lambda sim: sim.add_fault("http_5xx", endpoint="POST /v5/order/create"), False),
    ],
    ids=["500-after-accept", "502-after-accept", "503-not-executed"],
)
def test_doubtful_order_answers_are_outcome_unknown_and_sent_once(
    sim: BybitSim, client, inject, executed: bool
) -> None:
    price = resting_price(client)
    inject(sim)
    before = requests_answered(sim)
    with pytest.raises(errors.OutcomeUnknown) as info:
        client.call(resting_order("doubt-1", price), ANY)
    assert info.value.client_order_id == "doubt-1"
    assert info.value.exchange == "bybit" and info.value.endpoint == "POST /v5/order/create"
    assert requests_answered(sim) - before == 1  # one send, no retry
    assert client.stats["retries"] == 0
    # Resolved by querying the orderLinkId, never by re-sending.
    assert order_status(client, "doubt-1") == ("New" if executed else None)


def test_timeout_after_sending_an_order_is_outcome_unknown(sim: BybitSim) -> None:
    client = bybit_client(sim.rest_url, hmac_credentials(sim), timeout=0.3)
    try:
        client.sync_clock()
        price = resting_price(client)
        sim.timeout_after_accept(delay_s=3)
        before = requests_answered(sim)
        with pytest.raises(errors.OutcomeUnknown) as info:
            client.call(resting_order("slow-1", price), ANY)
        assert info.value.client_order_id == "slow-1"
        assert requests_answered(sim) - before == 1
        assert order_status(client, "slow-1") == "New"  # it was executed
    finally:
        client.close()


@pytest.mark.parametrize("skew_ms", [2000, -2000])
def test_two_second_skew_is_absorbed_without_a_rejected_request(
    sim: BybitSim, skew_ms: int
) -> None:
    sim.clock_skew(skew_ms)
    client = bybit_client(sim.rest_url, hmac_credentials(sim))
    try:
        price = resting_price(client)
        for i in range(5):
            client.call(endpoints.wallet_balance(), ANY)
            client.call(resting_order(f"skew{skew_ms}_{i}", price), ANY)
        client.call(endpoints.cancel_all("spot"), ANY)
        assert client.stats["clock_skew_rejections"] == 0
        assert client.stats["10002"] == 0
        assert client.clock.offset_ms == pytest.approx(skew_ms, abs=100)
    finally:
        client.close()


def test_skew_on_an_order_is_clock_skew_then_the_resynced_clock_works(
    sim: BybitSim, client
) -> None:
    price = resting_price(client)
    sim.clock_skew(-3000)  # server behind: our timestamps are now ahead
    with pytest.raises(errors.ClockSkew) as info:
        client.call(resting_order("ahead-1", price), ANY)
    assert info.value.code == 10002 and client.stats["retries"] == 0
    # The order was rejected (never placed); the clock is resynced for what follows.
    client.call(resting_order("ahead-2", price), ANY)
    assert order_status(client, "ahead-1") is None
    assert order_status(client, "ahead-2") == "New"


def test_skew_on_a_read_resyncs_and_retries_once(sim: BybitSim, client) -> None:
    sim.clock_skew(-3000)
    before = requests_answered(sim)
    client.call(endpoints.wallet_balance(), ANY)
    assert (client.stats["clock_skew_rejections"], client.stats["retries"]) == (1, 1)
    assert requests_answered(sim) - before == 1 + 3 + 1  # rejected, clock sync, one retry


def test_auth_failures_are_typed(sim: BybitSim) -> None:
    key, _ = sim.api_keys()[0]
    wrong = bybit_client(sim.rest_url, Credentials(key, secret="not-the-secret"))
    unknown = bybit_client(sim.rest_url, Credentials("NO-SUCH-KEY", secret="x"))
    try:
        with pytest.raises(errors.AuthError) as bad_sign:
            wrong.call(endpoints.wallet_balance(), ANY)
        assert bad_sign.value.code == 10004 and "signature" in str(bad_sign.value)
        with pytest.raises(errors.AuthError) as bad_key:
            unknown.call(endpoints.wallet_balance(), ANY)
        assert bad_key.value.code == 10003
        for err in (bad_sign.value, bad_key.value):
            assert "not-the-secret" not in str(err) + repr(err)
    finally:
        wrong.close()
        unknown.close()


def test_rejected_key_fault_is_an_auth_error(sim: BybitSim, client) -> None:
    price = resting_price(client)
    sim.reject_auth(endpoint="POST /v5/order/create")
    with pytest.raises(errors.AuthError) as info:
        client.call(resting_order("auth-1", price), ANY)
    assert info.value.code == 10003
    assert order_status(client, "auth-1") is None


def test_venue_refusals_are_typed(sim: BybitSim, client) -> None:
    price = resting_price(client)
    with pytest.raises(errors.OrderNotFound) as missing:
        client.call(endpoints.cancel_order("spot", "BTCUSDT", order_link_id="never-sent"), ANY)
    assert missing.value.code == 170213  # spot's own "Order does not exist."
    huge = endpoints.create_order(
        "spot", "BTCUSDT", "Buy", "Limit", Decimal("1000"), price=price, order_link_id="huge-1"
    )
    with pytest.raises(errors.InsufficientFunds) as poor:
        client.call(huge, ANY)
    assert poor.value.code == 170131


def test_leverage_not_modified_is_success(client) -> None:
    request = endpoints.Request(
        "POST",
        "/v5/position/set-leverage",
        {"category": "linear", "symbol": "BTCUSDT", "buyLeverage": "7", "sellLeverage": "7"},
        signed=True,
    )
    assert client.call(request, ANY)["retCode"] == 0
    assert client.call(request, ANY)["retCode"] == 110043  # unchanged: still a success
    assert client.stats["not_modified"] == 1


def test_rsa_key_signs_an_order_round_trip(sim: BybitSim) -> None:
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    key, _ = sim.add_account("rsa-user", api_key="RSA-KEY-1", rsa_pem=pem)
    client = bybit_client(sim.rest_url, Credentials(key, private_key_pem=pem))
    try:
        price = resting_price(client)
        placed = client.call(resting_order("rsa-1", price), ANY)
        assert placed["result"]["orderLinkId"] == "rsa-1"
        cancel = endpoints.cancel_order("spot", "BTCUSDT", order_link_id="rsa-1")
        assert client.call(cancel, ANY)["retCode"] == 0
    finally:
        client.close()
