"""``exconn demo``: the simulator, the actor tree and a printing subscriber, end to end."""

from __future__ import annotations

import sys
import time
from typing import Any

from thespian.actors import Actor

from exconn.book.local import LocalBook
from exconn.config import Config
from exconn.handle import start
from exconn.messages import (
    BookDelta,
    BookReset,
    BookSnapshot,
    BookStale,
    EventBatch,
    SubscriptionError,
    Trade,
)

PRINT_EVERY_SECONDS = 0.5


class DemoStats:
    def __init__(self, books: int, deltas: int, trades: int, resets: int) -> None:
        self.books, self.deltas, self.trades, self.resets = books, deltas, trades, resets


class GetDemoStats:
    pass


class PrintingSubscriber(Actor):
    """What an engine's market-data actor looks like: keeps books, prints a line now and then."""

    def __init__(self) -> None:
        super().__init__()
        self.books: dict[str, LocalBook] = {}
        self.last_print: dict[str, float] = {}
        self.snapshots = self.deltas = self.trades = self.resets = 0

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            for event in message.events:
                self._on_event(event)
        elif isinstance(message, GetDemoStats):
            self.send(sender, DemoStats(self.snapshots, self.deltas, self.trades, self.resets))
        elif isinstance(message, SubscriptionError):
            print(f"subscription error {message.topic}: {message.reason}", flush=True)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Trade):
            self.trades += 1
            print(
                f"{event.ts:%H:%M:%S.%f} {event.exchange} {event.symbol:<9} trade "
                f"{event.side.value:<4} {event.qty} @ {event.price}",
                flush=True,
            )
            return
        key = f"{event.exchange} {event.symbol}"
        book = self.books.setdefault(key, LocalBook())
        book.on_event(event)
        if isinstance(event, BookSnapshot):
            self.snapshots += 1
        elif isinstance(event, BookDelta):
            self.deltas += 1
        elif isinstance(event, BookReset):
            self.resets += 1
            print(f"{event.symbol} book reset: {event.reason}", flush=True)
        elif isinstance(event, BookStale):
            print(f"{event.symbol} book stale: {event.reason}", flush=True)
        now = time.monotonic()
        if book.current and now - self.last_print.get(key, 0.0) >= PRINT_EVERY_SECONDS:
            self.last_print[key] = now
            bid, ask = book.best()
            if bid and ask:
                print(
                    f"{event.exchange} {event.symbol:<9} book #{book.update_id} "
                    f"bid {bid[1]} @ {bid[0]}  ask {ask[1]} @ {ask[0]}",
                    flush=True,
                )


def run(
    seconds: float = 10.0, symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT"), seed: int = 7
) -> int:
    from exconn.sim import BinanceSpotSim, BybitSim

    with BinanceSpotSim(seed=seed) as binance, BybitSim(seed=seed) as bybit:
        print(f"binance simulator: REST {binance.rest_url}  WS {binance.ws_url}", flush=True)
        print(f"bybit simulator:   REST {bybit.rest_url}  WS {bybit.ws_url}", flush=True)
        config = Config.for_sim(
            binance.rest_url,
            binance.ws_url,
            bybit=(bybit.rest_url, bybit.ws_url),
            bybit_markets=("spot",),
        )
        ex = start(config)
        try:
            printer = ex.create_actor(PrintingSubscriber)
            # One pattern per symbol and kind: the same topic on both exchanges.
            topics = [f"{kind}.*.*.{s}" for s in symbols for kind in ("book", "trades")]
            ex.subscribe(printer, *topics)
            time.sleep(seconds)
            stats = ex.system.ask(printer, GetDemoStats(), 5)
        finally:
            ex.shutdown()
    if not isinstance(stats, DemoStats):
        print("demo: the subscriber did not answer", file=sys.stderr)
        return 1
    print(
        f"demo done: {stats.books} book snapshots, {stats.deltas} book updates, "
        f"{stats.trades} trades, {stats.resets} resets",
        flush=True,
    )
    return 0 if stats.books and stats.deltas else 1
