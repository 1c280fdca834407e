"""OrderCommand's own per-order work, in-process, without actors (see bench_orders.py for the
end-to-end number through the actor tree).

Against a Binance spot simulator in another process (market paused, accounts funded, orders
resting under the bid), each round places one order through each of:

- ``bare``: a signed ``POST /api/v3/order`` with httpx and exconn's signer, nothing else;
- ``rest``: ``RestClient.call`` with the request OrderCommand builds (budget, signing, breaker,
  hooks, classification, decode);
- ``place``: ``OrderCommand._place`` whole, split into ``prepare`` (checks, client id, the
  durable IN_FLIGHT journal record), ``submit`` (the REST call and reply parsing) and
  ``placed`` (the answer applied to the intent); ``after`` is what the actor does once the
  engine has its reply (the answer's journal record, OrderQuery's messages).

Reported per stage: the median wall time and the median CPU time of this thread (the CPU time
is what the shared machine's noise disturbs least). Orders rotate over several accounts so the
venue's 50-orders-per-10-s limit is never reached. ``--profile`` prints cProfile's top entries
for the ``place`` path instead.

    .venv/bin/python scripts/bench_order_path.py [--rounds 300] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import multiprocessing
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

# The bare client is bench_orders.py's (this script's directory is on sys.path when run).
from bench_orders import BinanceBare

from exconn.actors.order_command import OrderCommand, _Ready
from exconn.actors.order_messages import OrderCommandInit
from exconn.actors.order_query import ANY
from exconn.config import SEAL_KEY_ENV
from exconn.messages import PlaceOrder
from exconn.model.enums import Market, OrderSide, OrderType
from exconn.model.instruments import Instrument
from exconn.sim import BinanceSpotSim
from exconn.venues.driver import driver_for, venue_rest_client
from exconn.venues.keys import Credentials

SYMBOL, VENUE_SYMBOL = "BTC/USDT", "BTCUSDT"
PER_ACCOUNT = 25  # orders per account per run: well under the budget of 50 per 10 s


def serve_sim(accounts: int, conn: Any) -> None:
    with BinanceSpotSim(seed=9, depth_interval_ms=100, accounts=accounts) as sim:
        sim.pause()
        keys = []
        for i in range(accounts):
            k = sim.api_keys(i)
            sim.deposit(k, "USDT", "100000000")
            keys.append((k.hmac_key, k.hmac_secret))
        _, bids, _ = sim.book(VENUE_SYMBOL)
        conn.send((sim.rest_url, keys, str(bids[0][0])))
        with contextlib.suppress(EOFError):
            conn.recv()


def load_instrument(rest_url: str) -> Instrument:
    rest = venue_rest_client("binance", Market.SPOT, rest_url)
    try:
        catalog = driver_for("binance").load_catalog(Market.SPOT, rest.get)
    finally:
        rest.close()
    return next(i for i in catalog.instruments if i.symbol == SYMBOL)


def order_command(rest_url: str, creds: Credentials, inst: Instrument, budget: str) -> Any:
    cmd: Any = OrderCommand()
    cmd.send = lambda *_: None  # no actor system: the started notice goes nowhere
    cmd.wakeupAfter = lambda *_: None
    init = OrderCommandInit(
        exchange="binance",
        markets=("spot",),
        rest_urls={"spot": rest_url},
        credentials=creds,
        instruments=(inst,),
        rest_budget_dir=budget,
        log_level="WARNING",
        query="order-query",  # told through the no-op send: its messages are still built
    )
    cmd._on_init(init, None)
    return cmd


class Timed:
    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        yield
        c1, w1 = time.thread_time_ns(), time.perf_counter_ns()
        self.wall.setdefault(name, []).append((w1 - w0) / 1000)
        self.cpu.setdefault(name, []).append((c1 - c0) / 1000)

    def report(self) -> None:
        heads = ("wall p50 us", "cpu p50 us", "cpu mean us", "wall max us")
        print(f"{'stage':<10} {'n':>5} " + " ".join(f"{h:>12}" for h in heads))
        for name, walls in self.wall.items():
            cpus = self.cpu[name]
            values = (statistics.median(walls), statistics.median(cpus))
            values += (statistics.fmean(cpus), max(walls))
            print(f"{name:<10} {len(walls):>5} " + " ".join(f"{v:>12.0f}" for v in values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="cProfile the place path")
    args = parser.parse_args()
    total = args.rounds + args.warmup
    accounts = -(-total // PER_ACCOUNT)
    os.environ.setdefault(SEAL_KEY_ENV, os.urandom(16).hex())
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=serve_sim, args=(3 * accounts, there))
    proc.start()
    with contextlib.ExitStack() as stack:
        stack.callback(proc.join, 30)
        stack.callback(here.send, "stop")
        if not here.poll(60):
            raise SystemExit("the simulator did not start in 60 s")
        rest_url, keys, bid = here.recv()
        creds = [Credentials(k, secret=s) for k, s in keys]
        inst = load_instrument(rest_url)
        price = (Decimal(bid) * Decimal("0.9") / inst.tick_size).to_integral_value(ROUND_DOWN)
        price *= inst.tick_size
        qty = inst.min_qty
        if inst.min_notional is not None and qty * price < inst.min_notional * 2:
            qty = (inst.min_notional * 2 / price / inst.step_size).to_integral_value() + 1
            qty *= inst.step_size

        # One budget directory per client: exconn's Binance order budgets are not per account
        # (one account per system), so clients of several accounts sharing one would wait.
        def budget() -> str:
            return stack.enter_context(tempfile.TemporaryDirectory(dir="/dev/shm"))

        cmds = [order_command(rest_url, c, inst, budget()) for c in creds[:accounts]]
        rests = [order_command(rest_url, c, inst, budget()) for c in creds[accounts : 2 * accounts]]
        bares = [BinanceBare(rest_url, c, VENUE_SYMBOL) for c in creds[2 * accounts :]]
        for thing in (*cmds, *rests):
            stack.callback(thing.venue.close)
        for b in bares:
            stack.callback(b.http.close)

        def order() -> PlaceOrder:
            return PlaceOrder(
                exchange="binance",
                market=Market.SPOT,
                symbol=SYMBOL,
                side=OrderSide.BUY,
                type=OrderType.LIMIT,
                qty=qty,
                price=price,
            )

        timed = Timed()
        profiler = cProfile.Profile() if args.profile else None
        for i in range(total):
            slot = i // PER_ACCOUNT
            cmd, rest_cmd, bare = cmds[slot], rests[slot], bares[slot]
            if i == args.warmup:
                timed = Timed()
            with timed("bare"):
                if not bare.place(f"bare-{i}", price, qty):
                    raise SystemExit(f"bare order bare-{i} refused")
            ready = rest_cmd._prepare_place(order())
            assert isinstance(ready, _Ready), ready
            with timed("rest"):
                rest_cmd.venue.call("spot", ready.request, ANY)
            if profiler is not None and i >= args.warmup:
                profiler.runcall(place_split, cmd, order(), timed)
            else:
                place_split(cmd, order(), timed)
        timed.report()
        if profiler is not None:
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats("cumulative").print_stats(int(os.environ.get("TOP", "60")))
    return 0


def place_split(cmd: Any, order: PlaceOrder, timed: Timed) -> None:
    """``OrderCommand._place``, stage by stage."""
    with timed("place"):
        with timed("prepare"):
            ready = cmd._prepare_place(order)
        assert isinstance(ready, _Ready), ready
        with timed("submit"):
            reply, body = cmd._submit(ready.ctx, ready.request, ready.order, ready.instrument)
        with timed("placed"):
            cmd._placed(ready, reply, body, None)
    with timed("after"):  # after the reply: deferred records, OrderQuery's messages
        cmd._flush_query()
    if type(reply).__name__ != "OrderAccepted":
        raise SystemExit(f"not accepted: {reply}")


if __name__ == "__main__":
    sys.exit(main())
