"""Delivery latency at a steady rate: from the connection actor starting to read a frame off
the socket to the subscriber actor's handler, in another process.

The simulator steps its market every millisecond for three symbols (about 2,000 book
updates/s on this machine, the rate the Binance connectivity issue sets its target at); the
subscriber compares ``time.monotonic_ns()`` with each batch's ``received_ns``
(CLOCK_MONOTONIC is shared by the processes of one host). Kernel-to-userspace wake-up time
is not included.

    .venv/bin/python scripts/bench_latency.py --seconds 20
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from thespian.actors import Actor

import exconn
from exconn.messages import BookDelta, EventBatch
from exconn.sim import BinanceSpotSim

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


class GetLatencies:
    pass


class LatencyReport:
    def __init__(self, latencies_us: list[float], deltas: int) -> None:
        self.latencies_us = latencies_us
        self.deltas = deltas


class LatencySubscriber(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.latencies_us: list[float] = []
        self.deltas = 0

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            now = time.monotonic_ns()
            deltas = sum(1 for e in message.events if isinstance(e, BookDelta))
            if deltas and message.received_ns:
                self.latencies_us.extend([(now - message.received_ns) / 1000] * deltas)
            self.deltas += deltas
        elif isinstance(message, GetLatencies):
            self.send(sender, LatencyReport(self.latencies_us, self.deltas))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval-ms", type=int, default=1)
    args = parser.parse_args()
    with BinanceSpotSim(seed=9, depth_interval_ms=args.interval_ms) as sim:
        ex = exconn.start(exconn.Config.for_sim(sim.rest_url, sim.ws_url, log_level="WARNING"))
        try:
            sub = ex.create_actor(LatencySubscriber)
            ex.subscribe(sub, *(f"book.binance.spot.{s}" for s in SYMBOLS))
            time.sleep(2.0)  # warm-up: connect and sync both books (not measured)
            ex.system.ask(sub, GetLatencies(), 10)
            start = ex.system.ask(sub, GetLatencies(), 10)
            time.sleep(args.seconds)
            report = ex.system.ask(sub, GetLatencies(), 10)
        finally:
            ex.shutdown()
    measured = report.latencies_us[len(start.latencies_us) :]
    rate = (report.deltas - start.deltas) / args.seconds
    print(f"book updates/s delivered  {rate:,.0f}")
    print(f"updates measured          {len(measured)}")
    if measured:
        for q in (0.5, 0.9, 0.99, 0.999):
            label = f"p{q * 100:g} latency"
            print(f"{label:<26}{percentile(measured, q) / 1000:.3f} ms")
        print(f"max latency               {max(measured) / 1000:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
