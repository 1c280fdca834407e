"""Bybit flood mode: pre-encoded orderbook deltas written straight to the first subscriber,
continuing the snapshot it was sent with one `u` per message, ending at the final book."""

from __future__ import annotations

import random

import pytest

from exconn.sim import BybitSim
from exconn.sim.bybit_book import DepthView
from exconn.sim.bybit_flood import iter_view_deltas
from exconn.sim.flood import iter_flood
from exconn.sim.market import Book
from tests.sim.helpers import wait_until
from tests.sim.test_bybit_client import LocalBook, Ws, bybit

__all__ = ["bybit"]


def run_flood(sim: BybitSim, category: str, depth: int, n_updates: int) -> LocalBook:
    sim.prepare_flood(category, "BTCUSDT", n_updates, depth=depth)
    start_u = sim.last_update_id(category, "BTCUSDT", depth)
    final_u = sim.flood_final_book(category, "BTCUSDT")[0]
    ws = Ws(f"{sim.ws_url}/v5/public/{category}")
    try:
        topic = f"orderbook.{depth}.BTCUSDT"
        ws.send({"op": "subscribe", "args": [topic], "req_id": "f"})
        assert ws.recv()["success"] is True, "the ack comes first"
        snapshot = ws.recv()
        assert snapshot["type"] == "snapshot" and snapshot["data"]["u"] == start_u
        book = LocalBook(depth)
        book.apply(snapshot)
        previous = start_u
        for _ in range(final_u - start_u):  # bounded: one message per u
            msg = ws.recv()
            assert msg["topic"] == topic and msg["type"] == "delta"
            assert msg["data"]["u"] == previous + 1, "u must be continuous"
            assert msg["data"]["b"] or msg["data"]["a"], "an empty delta"
            previous = msg["data"]["u"]
            book.apply(msg)
        assert not book.gaps
        return book
    finally:
        ws.close()


@pytest.mark.parametrize(("category", "depth"), [("spot", 200), ("linear", 50)])
def test_flood_is_continuous_and_ends_at_the_final_book(
    bybit: BybitSim, category: str, depth: int
) -> None:
    book = run_flood(bybit, category, depth, 3_000)
    final = bybit.flood_final_book(category, "BTCUSDT")
    assert book.view() == final
    wait_until(lambda: bybit.stats().get("floods_completed") == 1, "flood completion")
    assert bybit.last_update_id(category, "BTCUSDT", depth) == final[0]
    assert bybit.book(category, "BTCUSDT", depth) == final
    # The market moves on from the flood's state: the next delta continues it.
    bybit.step(3)
    assert bybit.last_update_id(category, "BTCUSDT", depth) > final[0]


def test_flood_goes_to_the_first_subscriber_of_its_topic_only(bybit: BybitSim) -> None:
    bybit.prepare_flood("spot", "BTCUSDT", 50, depth=200)
    other = Ws(f"{bybit.ws_url}/v5/public/linear")  # same symbol, other category
    try:
        other.send({"op": "subscribe", "args": ["orderbook.200.BTCUSDT"]})
        assert other.recv()["success"] is True
        assert other.recv()["type"] == "snapshot"
        assert bybit.stats().get("floods_completed", 0) == 0
        with pytest.raises(RuntimeError):
            bybit.step(1)  # frozen until the flood is written
        book = run_flood_armed(bybit)
        assert book.view() == bybit.flood_final_book("spot", "BTCUSDT")
        wait_until(lambda: bybit.stats().get("floods_completed") == 1, "flood completion")
        bybit.step(1)
        assert other.until(lambda m: m.get("type") == "delta")["topic"] == "orderbook.200.BTCUSDT"
    finally:
        other.close()


def run_flood_armed(sim: BybitSim) -> LocalBook:
    final_u = sim.flood_final_book("spot", "BTCUSDT")[0]
    ws = Ws(f"{sim.ws_url}/v5/public/spot")
    try:
        ws.send({"op": "subscribe", "args": ["orderbook.200.BTCUSDT"]})
        assert ws.recv()["success"] is True
        book = LocalBook(200)
        book.apply(ws.recv())
        for _ in range(final_u - book.u):
            book.apply(ws.recv())
        assert not book.gaps and book.u == final_u
        return book
    finally:
        ws.close()


def test_view_deltas_equal_what_the_depth_view_publishes() -> None:
    """The incremental projection agrees with `DepthView.advance` (what a normal step
    publishes) on every diff, at the view's boundary included."""
    rng = random.Random(3)
    bids = {6_000_000 - i: rng.randint(1, 50) for i in range(80)}
    asks = {6_000_001 + i: rng.randint(1, 50) for i in range(80)}
    for depth in (50, 200):
        projected = Book(10, dict(bids), dict(asks))
        replayed = Book(10, dict(bids), dict(asks))
        view = DepthView(depth, 0, dict(projected.bids), dict(projected.asks))
        view.bids = dict(sorted(bids.items(), reverse=True)[:depth])
        view.asks = dict(sorted(asks.items())[:depth])
        deltas = iter_view_deltas(projected, depth, 2_000, 3, 1, 50, random.Random(9))
        # The same diffs, replayed on a second book and published the ordinary way.
        plain = iter_flood(replayed, 2_000, 3, max(1, (depth - 3) // 2), 1, 50, random.Random(9))
        expected = []
        for diff in plain:  # iter_flood has applied the diff to `replayed`
            delta = view.advance(replayed)
            if delta is not None:
                expected.append((diff.last_id, delta.bids, delta.asks))
        assert list(deltas) == expected
        assert projected.bids == replayed.bids and projected.asks == replayed.asks
