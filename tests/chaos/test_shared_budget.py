"""One REST budget per host shared by several processes (exconn.transport.ratelimit), against
the Binance spot simulator (6000 weight per minute per IP, 429 then 418 past it).

Real processes, each with its own RestClient on the same budget directory, as ``exconn.start``
wires the actor processes. They are forked before the simulator starts (no thread of the test
process is inside a lock at the fork) and driven over pipes (no semaphore, so no resource
tracker process outlives the suite)."""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from exconn import errors
from exconn.sim import BinanceSpotSim
from exconn.transport.rest import RestClient
from exconn.venues.binance import endpoints
from exconn.venues.keys import Credentials
from tests.chaos.binance_rest_support import ANY, ManualWall, spot_client

CTX = multiprocessing.get_context("fork")
WORKERS = 4
THREADS = 8  # per process: a burst, not a queue
JOIN_S = 30.0
ANSWER_S = 60.0
MAX_COMMANDS = 32
SIM_WEIGHT_PER_MINUTE = 6000

Job = tuple[str, dict[str, str], bool]  # path, params, signed

# A start-up burst of mixed reads: snapshots of every size, trades, exchangeInfo, account.
MIX: list[Job] = [
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": "5000"}, False),  # 250
    ("/api/v3/depth", {"symbol": "ETHUSDT", "limit": "1000"}, False),  # 50
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": "100"}, False),  # 5
    ("/api/v3/trades", {"symbol": "BTCUSDT"}, False),  # 25
    ("/api/v3/exchangeInfo", {}, False),  # 20
    ("/api/v3/ticker/price", {}, False),  # 4
    ("/api/v3/ping", {}, False),  # 1
    ("/api/v3/account", {}, True),  # 20
]


def _jobs(seed: int) -> list[Job]:
    rng = random.Random(seed)
    # Each process alone stays far inside the limit; together they are well over it.
    return [MIX[0]] * 6 + [rng.choice(MIX) for _ in range(30)]


def _weight(jobs: list[Job]) -> int:
    return sum(endpoints.SPOT_REST.cost("GET", path, params).weight for path, params, _ in jobs)


def _run(client: RestClient, job: Job) -> str:
    path, params, signed = job
    try:
        if signed:
            client.signed_request("GET", path, params, ANY, is_order=False)
        else:
            client.get(path, params, ANY)
    except errors.ExconnError as exc:
        return type(exc).__name__
    return "ok"


def _serve(conn: Connection) -> None:
    """One worker process running the parent's commands until "stop" (or silence):
    ("connect", (rest_url, budget_dir, key, secret)), ("burst", jobs), ("get", path),
    ("shift", seconds)."""
    wall = ManualWall()
    client: RestClient | None = None
    try:
        for _ in range(MAX_COMMANDS):
            if not conn.poll(ANSWER_S):
                break
            command, arg = conn.recv()
            if command == "stop":
                break
            if command == "connect":
                rest_url, budget_dir, key, secret = arg
                creds = Credentials(key, secret=secret)
                client = spot_client(
                    rest_url, creds, budget_dir=budget_dir, wall=wall, max_wait=1.0
                )
                client.sync_clock()
                conn.send("ok")
            elif command == "shift":
                wall.shift = arg
                conn.send("ok")
            elif command == "burst":
                assert client is not None
                with ThreadPoolExecutor(max_workers=THREADS) as pool:
                    outcomes = Counter(pool.map(_run, [client] * len(arg), arg))
                conn.send((dict(outcomes), dict(client.stats)))
            elif command == "get":
                assert client is not None
                params = {"symbol": "BTCUSDT"} if arg.endswith("/depth") else {}
                try:
                    client.get(arg, params, ANY)
                except errors.ExconnError as exc:
                    conn.send((type(exc).__name__, getattr(exc, "retry_after", None)))
                    continue
                conn.send(("ok", None))
    finally:
        if client is not None:
            client.close()
        conn.close()


class Fleet:
    """WORKERS processes, each answering commands over its own pipe."""

    def __init__(self) -> None:
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for _ in range(WORKERS):
            mine, theirs = CTX.Pipe()
            self.pipes.append(mine)
            self.processes.append(CTX.Process(target=_serve, args=(theirs,)))
        for process in self.processes:
            process.start()

    def send(self, worker: int, command: str, arg: Any = None) -> None:
        self.pipes[worker].send((command, arg))

    def answer(self, worker: int) -> Any:
        pipe = self.pipes[worker]
        if not pipe.poll(ANSWER_S):
            raise TimeoutError(f"worker {worker} did not answer")
        return pipe.recv()

    def ask(self, worker: int, command: str, arg: Any = None) -> Any:
        self.send(worker, command, arg)
        return self.answer(worker)

    def connect(self, sim: BinanceSpotSim, budget_dir: str | None) -> None:
        keys = sim.api_keys(0)
        for worker in range(WORKERS):
            args = (sim.rest_url, budget_dir, keys.hmac_key, keys.hmac_secret)
            assert self.ask(worker, "connect", args) == "ok"

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # a worker that already ended
                pipe.send(("stop", None))
        for process in self.processes:
            process.join(JOIN_S)
        for process in self.processes:
            if process.is_alive():
                process.kill()
                process.join(JOIN_S)
        for pipe in self.pipes:
            pipe.close()


@pytest.fixture
def fleet():
    running = Fleet()  # forked before any simulator thread exists
    try:
        yield running
    finally:
        running.close()


def run_burst(fleet: Fleet, sim: BinanceSpotSim, budget_dir: str | None) -> list[Any]:
    """Every worker fires its jobs at once; returns each one's (outcomes, client stats)."""
    fleet.connect(sim, budget_dir)
    for worker in range(WORKERS):  # back to back: the bursts overlap
        fleet.send(worker, "burst", _jobs(worker))
    return [fleet.answer(worker) for worker in range(WORKERS)]


def test_processes_bursting_over_the_limit_share_one_budget_and_get_no_429(
    fleet: Fleet, tmp_path: Path
) -> None:
    total = sum(_weight(_jobs(i)) for i in range(WORKERS))
    assert total > SIM_WEIGHT_PER_MINUTE  # the burst together is over the IP's limit...
    assert all(_weight(_jobs(i)) < SIM_WEIGHT_PER_MINUTE * 0.9 for i in range(WORKERS))
    with BinanceSpotSim(accounts=1) as sim:
        reports = run_burst(fleet, sim, str(tmp_path / "budget"))
        answered = sim.stats()["rest_requests"]
    outcomes: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    for outcome, client_stats in reports:
        outcomes.update(outcome)
        stats.update(client_stats)
    # ...yet the venue never refused: what did not fit waited or was held back unsent.
    assert stats["429"] == 0 and stats["418"] == 0
    assert set(outcomes) <= {"ok", "RateLimited"}
    assert outcomes["RateLimited"] == stats["refused_budget"]
    assert outcomes["ok"] + outcomes["RateLimited"] == sum(len(_jobs(i)) for i in range(WORKERS))
    assert answered == stats["sent"]  # every request sent was answered, none lost


@pytest.mark.parametrize(("kind", "error"), [("http_429", "RateLimited"), ("http_418", "Banned")])
def test_a_refusal_seen_by_one_process_stops_the_others_until_retry_after(
    fleet: Fleet, tmp_path: Path, kind: str, error: str
) -> None:
    retry_after = 30
    with BinanceSpotSim(accounts=1) as sim:
        fleet.connect(sim, str(tmp_path / "budget"))
        for worker in range(WORKERS):  # every process is up and its client works
            assert fleet.ask(worker, "get", "/api/v3/ping") == ("ok", None)
        sim.add_fault(kind, endpoint="GET /api/v3/depth", count=1, retry_after=retry_after)
        assert fleet.ask(0, "get", "/api/v3/depth") == (error, retry_after)  # the venue's own
        answered = sim.stats()["rest_requests"]
        for worker in range(1, WORKERS):
            for path in ("/api/v3/time", "/api/v3/depth"):
                name, seconds = fleet.ask(worker, "get", path)
                assert name == error and 0 < seconds <= retry_after
        assert sim.stats()["rest_requests"] == answered  # nothing was sent meanwhile
        for worker in range(WORKERS):
            fleet.ask(worker, "shift", retry_after + 0.5)
            assert fleet.ask(worker, "get", "/api/v3/depth") == ("ok", None)
        assert sim.stats()["rest_requests"] == answered + WORKERS


# ------------------------------------------------------------------------------------------
# exconn.start wires it: supervisor and connection actors count into one file per host.


@pytest.mark.integration
def test_the_actor_systems_processes_draw_from_one_budget_removed_at_shutdown() -> None:
    import exconn
    from exconn.transport.ratelimit import SharedBudget, WeightLimiter
    from tests.integration.conftest import wait_for
    from tests.integration.subscribers import RecordingSubscriber

    with BinanceSpotSim(accounts=1) as sim:
        ex = exconn.start(exconn.Config.for_sim(sim.rest_url, sim.ws_url))
        try:
            assert ex.budget_dir is not None
            host = sim.rest_url.split("//", 1)[1].rstrip("/")
            budget = SharedBudget.for_host(ex.budget_dir, host)
            spot = WeightLimiter(endpoints.SPOT_REST.limits(), store=budget)
            (weight,) = [lim for lim in spot.limits if lim.kind == "REQUEST_WEIGHT"]
            ex.subscribe(ex.create_actor(RecordingSubscriber), "book.binance.spot.BTC/USDT")

            def spent() -> int:  # this minute and the last (the two may straddle :00)
                now = time.time() * 1000
                return spot.used(weight, now) + spot.used(weight, now - 60_000)

            # exchangeInfo (20, the supervisor) + a depth snapshot (50, a connection actor).
            wait_for(lambda: spent() >= 70, "weight of two processes in the shared budget")
            budget.close()
        finally:
            ex.shutdown()
        assert not Path(ex.budget_dir).exists()
