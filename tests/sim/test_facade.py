"""What the three venue facades share: credentials, connection counting, the faults API."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import websocket
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from exconn.sim import BinanceSpotSim, BinanceUsdmSim, BybitSim
from exconn.sim.facade import SimCredentials, SimFacade
from exconn.sim.fault_registry import FaultKind
from tests.sim.conftest import SimFactory
from tests.sim.test_bybit_client import bybit
from tests.sim.test_usdm_helpers import make_usdm, usdm, wait_until

__all__ = ["bybit", "make_usdm", "usdm"]


def test_every_facade_is_a_sim_facade() -> None:
    for cls in (BinanceSpotSim, BinanceUsdmSim, BybitSim):
        assert issubclass(cls, SimFacade)


@pytest.mark.parametrize("cls", [BinanceSpotSim, BinanceUsdmSim, BybitSim])
def test_only_ipv4_loopback_is_accepted(cls: Callable[..., SimFacade]) -> None:
    for host in ("localhost", "0.0.0.0", "::1"):
        with pytest.raises(ValueError, match="IPv4 loopback"):
            cls(host=host)


def test_spot_credentials_list_every_key_of_every_account() -> None:
    sim = BinanceSpotSim(accounts=2)  # not started: credentials need no server
    creds = sim.credentials()
    assert [c.kind for c in creds] == ["hmac", "ed25519", "rsa"] * 2
    first = sim.api_keys(0)
    assert creds[0] == SimCredentials(first.account, first.hmac_key, "hmac", first.hmac_secret)
    assert creds[1].api_key == first.ed25519_key
    assert creds[2].private_key_pem == first.rsa_private_pem
    for cred in creds:
        if cred.kind != "hmac":
            assert cred.private_key_pem is not None
            serialization.load_pem_private_key(cred.private_key_pem.encode(), password=None)
    assert {c.account for c in creds} == {k.account for k in sim.accounts}


def test_usdm_credentials_follow_api_keys(usdm: BinanceUsdmSim) -> None:
    account, _ = usdm.api_keys()[0]
    usdm.add_key(account, "read-only-key", "s3cret", ["READ"])
    creds = usdm.credentials()
    assert [(c.api_key, c.secret) for c in creds] == usdm.api_keys()
    assert all(c.kind == "hmac" and c.account == account for c in creds)


def test_bybit_credentials_include_rsa_keys(bybit: BybitSim) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bybit.add_key("sim-user-1", "RSAPRIVATE", rsa_pem=private_pem)
    bybit.add_key("sim-user-1", "RSAPUBLIC", rsa_pem=public_pem)
    creds = bybit.credentials()
    assert [(c.api_key, c.secret) for c in creds if c.kind == "hmac"] == bybit.api_keys()
    by_key = {c.api_key: c for c in creds}
    assert by_key["RSAPRIVATE"].private_key_pem == private_pem
    assert by_key["RSAPUBLIC"].kind == "rsa" and by_key["RSAPUBLIC"].private_key_pem is None
    assert creds[0].account == "sim-user-1"


def test_bybit_counts_connections(bybit: BybitSim) -> None:
    assert bybit.connection_count() == 0
    ws = websocket.create_connection(f"{bybit.ws_url}/v5/public/spot", timeout=5)
    try:
        assert bybit.wait_for_connections(1, timeout=5)
        assert bybit.connection_count() == 1
    finally:
        ws.close()
    wait_until(lambda: bybit.connection_count() == 0, "the socket to be forgotten")


def test_usdm_lists_connections_and_clears_faults(usdm: BinanceUsdmSim) -> None:
    ws = websocket.create_connection(
        f"{usdm.ws_url}/public/stream?streams=btcusdt@depth", timeout=5
    )
    try:
        assert usdm.wait_for_connections(1, timeout=5)
        (conn,) = usdm.connections()
        assert conn["route"] == "public" and conn["streams"] == ["btcusdt@depth"]
        assert conn["id"] in usdm.connection_ids()
    finally:
        ws.close()
    usdm.add_fault(FaultKind.HTTP_429, count=3)
    usdm.add_fault(FaultKind.MALFORMED, count=1)
    assert len(usdm.faults()) == 2
    usdm.clear_faults()
    assert usdm.faults() == []


def test_spot_stats_report_zero_counters(make_sim: SimFactory) -> None:
    sim = make_sim(seed=3)
    stats = sim.stats()
    assert stats["frames_sent"] == 0 and stats["connections_dropped"] == 0
