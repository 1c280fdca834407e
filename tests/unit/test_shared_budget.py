"""SharedBudget: limiters on one budget file spend one budget and see each other's stops;
RestClients given the same budget_dir share the host's budget (exconn.transport.ratelimit)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from exconn import errors
from exconn.transport.ratelimit import (
    Cost,
    Limit,
    SharedBudget,
    Usage,
    WeightLimiter,
    limit_from_binance,
)
from exconn.transport.rest import RestClient
from exconn.venues.binance import endpoints

MINUTE = limit_from_binance("REQUEST_WEIGHT", "MINUTE", 1, 100)
T0 = 28_333_333 * 60_000 + 40_000.0  # epoch ms, 40 s into a minute
ANY = msgspec.json.Decoder(Any)


def limiter(budget: SharedBudget, *limits: Limit, account: str = "") -> WeightLimiter:
    return WeightLimiter(limits or (MINUTE,), headroom=1.0, store=budget, account=account)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "host.budget"


def test_two_limiters_on_one_file_spend_one_budget(path: Path) -> None:
    a, b = limiter(SharedBudget(path)), limiter(SharedBudget(path))
    assert a.try_reserve(Cost(weight=60), T0) == 0.0
    assert b.used(MINUTE, T0) == 60
    assert b.try_reserve(Cost(weight=41), T0) > 0  # 60 + 41 > 100: b waits for a's spending
    assert b.try_reserve(Cost(weight=40), T0) == 0.0
    assert a.try_reserve(Cost(weight=1), T0) > 0
    a.release(Cost(weight=40), T0)
    assert b.used(MINUTE, T0) == 60


def test_a_stop_written_by_one_refuses_the_other(path: Path) -> None:
    a, b = limiter(SharedBudget(path)), limiter(SharedBudget(path))
    a.stop(T0 + 30_000, 429)
    stop = b.stopped(T0 + 1000, is_order=False)
    assert stop is not None and stop.status == 429
    assert stop.remaining_s(T0 + 1000) == pytest.approx(29.0)
    b.stop(T0 + 5000, 418)  # a ban outranks the 429, the later deadline stays
    seen = a.stopped(T0, is_order=True)
    assert seen is not None and (seen.status, seen.until_ms) == (418, T0 + 30_000)
    assert b.stopped(T0 + 30_000, is_order=False) is None


def test_usage_seen_by_one_raises_the_count_of_all(path: Path) -> None:
    a, b = limiter(SharedBudget(path)), limiter(SharedBudget(path))
    a.observe_usage([Usage("REQUEST_WEIGHT", 95, suffix="1M")], T0)
    assert b.used(MINUTE, T0) == 95
    assert b.try_reserve(Cost(weight=10), T0) > 0


def test_per_account_limits_are_kept_apart(path: Path) -> None:
    orders = Limit("UID /v5/order/create spot", 1000, 2, rolling=True, per_account=True)
    cost = Cost(weight=0, raw=0, extra=((orders, 1),))
    alice = limiter(SharedBudget(path), orders, account="alice")
    alice2 = limiter(SharedBudget(path), orders, account="alice")
    bob = limiter(SharedBudget(path), orders, account="bob")
    assert alice.try_reserve(cost, T0) == 0.0
    assert alice2.try_reserve(cost, T0) == 0.0
    assert alice.try_reserve(cost, T0) > 0  # alice's two are spent, in whichever process
    assert bob.try_reserve(cost, T0) == 0.0
    alice.stop(T0 + 1000, 429, kind=orders.kind)
    assert alice2.stopped(T0, is_order=True, cost=cost) is not None
    assert bob.stopped(T0, is_order=True, cost=cost) is None
    # A process that never used the endpoint still sees its account's stop.
    fresh = WeightLimiter([], store=SharedBudget(path), account="alice")
    stop = fresh.stopped(T0, is_order=True, cost=cost)
    assert stop is not None and stop.kind == orders.kind


def test_an_unreadable_file_starts_afresh(path: Path) -> None:
    a = limiter(SharedBudget(path))
    a.try_reserve(Cost(weight=50), T0)
    with path.open("r+b") as f:
        f.seek(SharedBudget.HEADER.size)
        f.write(b"\xc1" * 16)  # msgpack's never-used byte: a torn write
    assert a.used(MINUTE, T0) == 0
    assert a.try_reserve(Cost(weight=50), T0) == 0.0
    assert limiter(SharedBudget(path)).used(MINUTE, T0) == 50


def test_an_unusable_directory_degrades_to_counting_alone(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    lim = limiter(SharedBudget.for_host(blocker, "h:1"))
    assert lim.try_reserve(Cost(weight=60), T0) == 0.0
    assert lim.try_reserve(Cost(weight=60), T0) > 0  # still a budget, in this process


def test_for_host_names_one_file_per_host(tmp_path: Path) -> None:
    one = SharedBudget.for_host(tmp_path / "sys", "api.binance.com:443")
    two = SharedBudget.for_host(tmp_path / "sys", "fapi.binance.com:443")
    assert one.path != two.path and one.path.parent == tmp_path / "sys"
    assert one.path.name == "api.binance.com_443.budget"
    limiter(one).try_reserve(Cost(weight=1), T0)  # the directory is made on first use
    assert one.path.is_file()


def _reserve_in_child(budget: SharedBudget, weight: int) -> None:
    limiter(budget).try_reserve(Cost(weight=weight), T0)


def test_a_forked_child_using_the_parents_object_shares_the_budget(path: Path) -> None:
    budget = SharedBudget(path)
    parent = limiter(budget)
    parent.try_reserve(Cost(weight=10), T0)  # opened (and locked once) before the fork
    child = multiprocessing.get_context("fork").Process(target=_reserve_in_child, args=(budget, 30))
    child.start()
    try:
        child.join(30)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
            child.join(5)
    assert parent.used(MINUTE, T0) == 40


# ------------------------------------------------------------------------------------------
# Through RestClient: clients with one budget_dir (one per process in a system) share it.


class Venue:
    """A mock Binance host: counts requests, answers what ``reply`` says."""

    def __init__(self) -> None:
        self.requests = 0
        self.reply = httpx.Response(200, json={})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return self.reply


def client(venue: Venue, budget_dir: Path | None, **kw: Any) -> RestClient:
    return RestClient(
        "http://venue.test",
        exchange="binance",
        venue=endpoints.SPOT_REST,
        transport=httpx.MockTransport(venue),
        budget_dir=None if budget_dir is None else str(budget_dir),
        wall=lambda: T0 / 1000,
        **kw,
    )


def test_clients_on_one_budget_dir_share_the_hosts_weight(tmp_path: Path) -> None:
    venue = Venue()
    a, b = client(venue, tmp_path, max_wait=0.5), client(venue, tmp_path, max_wait=0.5)
    try:
        # 108 depth snapshots of weight 50 fill the 6000 * 0.9 budget, whoever sends them.
        for i in range(108):
            (a if i % 2 else b).get("/api/v3/depth", {"symbol": "X", "limit": "1000"}, ANY)
        with pytest.raises(errors.RateLimited, match="not sent"):
            a.get("/api/v3/depth", {"symbol": "X", "limit": "1000"}, ANY)
        with pytest.raises(errors.RateLimited, match="not sent"):
            b.get("/api/v3/depth", {"symbol": "X", "limit": "1000"}, ANY)
        assert venue.requests == 108
    finally:
        a.close()
        b.close()


def test_without_a_budget_dir_each_client_counts_alone(tmp_path: Path) -> None:
    venue = Venue()
    a, b = client(venue, None, max_wait=0.5), client(venue, None, max_wait=0.5)
    try:
        for _ in range(108):
            a.get("/api/v3/depth", {"symbol": "X", "limit": "1000"}, ANY)
        b.get("/api/v3/depth", {"symbol": "X", "limit": "1000"}, ANY)  # b knows nothing of a
        assert venue.requests == 109
    finally:
        a.close()
        b.close()


def test_a_429_seen_by_one_client_stops_the_other(tmp_path: Path) -> None:
    venue = Venue()
    a, b = client(venue, tmp_path), client(venue, tmp_path)
    try:
        venue.reply = httpx.Response(
            429, json={"code": -1003, "msg": "Too many requests."}, headers={"Retry-After": "7"}
        )
        with pytest.raises(errors.RateLimited):
            a.get("/api/v3/ping", {}, ANY)
        venue.reply = httpx.Response(200, json={})
        with pytest.raises(errors.RateLimited, match="not sent") as info:
            b.get("/api/v3/time", {}, ANY)
        assert info.value.retry_after == pytest.approx(7.0)
        assert venue.requests == 1
    finally:
        a.close()
        b.close()


def test_start_gives_every_exchange_one_directory_unless_configured(tmp_path: Path) -> None:
    from exconn.config import Config, ExchangeConfig
    from exconn.handle import _remove_budget_dir, _with_budget_dir

    mine = ExchangeConfig(name="bybit", rest_budget_dir=str(tmp_path))
    config = Config(exchanges=(ExchangeConfig(name="binance"), mine))
    wired, created = _with_budget_dir(config)
    try:
        assert created is not None and Path(created).is_dir()
        assert [ex.rest_budget_dir for ex in wired.exchanges] == [created, str(tmp_path)]
    finally:
        _remove_budget_dir(created)
    assert not Path(created).exists()
    configured = Config(exchanges=(mine,))
    assert _with_budget_dir(configured) == (configured, None)
