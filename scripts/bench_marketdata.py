"""Book updates/s through the full actor path, to a subscriber in another process.

The simulator sends N pre-encoded depth frames as fast as the socket takes them to the first
depth subscriber: Binance spot diff-depth events (``--venue binance``, the default) or Bybit
V5 spot ``orderbook.200`` deltas (``--venue bybit``). exconn's connection actor decodes, syncs
and applies them and forwards batches to a subscriber actor, which rebuilds the book; the
final book must equal the simulator's.

    .venv/bin/python scripts/bench_marketdata.py --updates 300000
    .venv/bin/python scripts/bench_marketdata.py --venue bybit --updates 300000
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from thespian.actors import Actor

import exconn
from exconn.book.local import LocalBook
from exconn.messages import BookDelta, BookSnapshot, EventBatch
from exconn.sim import BinanceSpotSim, BybitSim

SYMBOL = "BTCUSDT"

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Report:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class GetReport:
    """Ask for the report; ``with_book`` adds the whole book (costly: only once, at the end,
    so that polling does not slow the subscriber down)."""

    def __init__(self, with_book: bool = False) -> None:
        self.with_book = with_book


class BenchSubscriber(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.book = LocalBook()
        self.deltas = 0
        self.batches = 0
        self.snapshots = 0
        self.rejected = 0
        self.first_update_id: int | None = None
        self.t_first = 0.0
        self.t_last = 0.0

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            self.batches += 1
            book = self.book
            for event in message.events:
                ok = book.on_event(event)
                if isinstance(event, BookDelta):
                    self.deltas += 1
                    self.rejected += not ok
                elif isinstance(event, BookSnapshot):
                    self.snapshots += 1
                    self.first_update_id = event.update_id
                    self.t_first = time.monotonic()
            self.t_last = time.monotonic()
        elif isinstance(message, GetReport):
            bids, asks = self.book.top(10_000) if message.with_book else ([], [])
            self.send(
                sender,
                Report(
                    deltas=self.deltas,
                    batches=self.batches,
                    snapshots=self.snapshots,
                    rejected=self.rejected,
                    first_update_id=self.first_update_id,
                    update_id=self.book.update_id,
                    t_first=self.t_first,
                    t_last=self.t_last,
                    bids=bids,
                    asks=asks,
                    pid=os.getpid(),
                ),
            )


def ask_report(ex: Any, sub: Any, with_book: bool, timeout: float) -> Report | None:
    """The subscriber's report. A reply that arrives after its own ask timed out (a slow
    ``status()`` under load) is read by the next ask: skip such strays, a bounded number."""
    reply = ex.system.ask(sub, GetReport(with_book), timeout)
    for _ in range(10):
        if reply is None or isinstance(reply, Report):
            return reply
        reply = ex.system.listen(timeout)
    return None


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--venue", choices=("binance", "bybit"), default="binance")
    args = parser.parse_args()

    # The simulator runs in this process (its own thread); the client side runs in exconn's
    # actor processes, so the figures below are for those processes alone.
    sim: BinanceSpotSim | BybitSim
    if args.venue == "bybit":
        sim = BybitSim(seed=5)
        topic = "book.bybit.spot.BTC/USDT"
    else:
        sim = BinanceSpotSim(seed=5)
        topic = "book.binance.spot.BTC/USDT"
    with sim:
        sim.pause()
        if isinstance(sim, BybitSim):
            sim.prepare_flood("spot", SYMBOL, args.updates)
            final_id, final_bids, final_asks = sim.flood_final_book("spot", SYMBOL)
            config = exconn.Config.for_sim(
                None,
                None,
                bybit=(sim.rest_url, sim.ws_url),
                bybit_markets=("spot",),
                log_level="WARNING",
            )
        else:
            sim.prepare_flood(SYMBOL, args.updates)
            final_id, final_bids, final_asks = sim.flood_final_book(SYMBOL)
            config = exconn.Config.for_sim(sim.rest_url, sim.ws_url, log_level="WARNING")
        ex = exconn.start(config)
        try:
            sub = ex.create_actor(BenchSubscriber)
            ex.subscribe(sub, topic)
            deadline = time.monotonic() + args.timeout
            conn_pid = None
            cpu0 = 0.0
            report = None
            while time.monotonic() < deadline:
                if conn_pid is None:
                    status = ex.status()
                    if status.connections:
                        # The whole life of the connection process (start-up included,
                        # a slight overstatement): a baseline taken here could come after
                        # the flood when the first status answer is late.
                        conn_pid = status.connections[0].pid
                report = ask_report(ex, sub, False, 10)
                if report is not None and report.update_id == final_id:
                    break
                time.sleep(0.2)
            assert report is not None and conn_pid is not None
            conn_cpu = cpu_seconds(conn_pid) - cpu0
            report = ask_report(ex, sub, True, 30)
            assert report is not None, "the subscriber did not answer"
            (conn_info,) = ex.status().connections
            sub_cpu = cpu_seconds(report.pid)
        finally:
            ex.shutdown()
    elapsed = report.t_last - report.t_first
    exact = (
        report.update_id == final_id
        and report.bids == list(final_bids)
        and report.asks == list(final_asks)
    )
    print(f"venue                      {args.venue}")
    print(f"updates flooded            {args.updates}")
    print(f"deltas delivered           {report.deltas} (the rest folded into the snapshot)")
    print(f"batches (actor messages)   {report.batches}")
    print(f"socket drains              {conn_info.drains} ({conn_info.frames} frames)")
    print(f"rejected deltas            {report.rejected}")
    print(f"final book exact           {exact}")
    print(f"delivery window            {elapsed:.3f} s")
    if elapsed > 0 and report.deltas:
        print(f"book updates/s delivered   {report.deltas / elapsed:,.0f}")
        print(f"connection CPU s/100k      {conn_cpu / report.deltas * 100_000:.3f}")
        print(f"subscriber CPU s/100k      {sub_cpu / report.deltas * 100_000:.3f}")
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
