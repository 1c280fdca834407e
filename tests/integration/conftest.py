from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import exconn
from exconn.sim import BinanceSpotSim
from tests.integration.subscribers import GetView, View

WAIT_SECONDS = 30.0


@pytest.fixture
def sim() -> Iterator[BinanceSpotSim]:
    s = BinanceSpotSim(seed=11, depth_interval_ms=50).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def ex(sim: BinanceSpotSim) -> Iterator[exconn.Exconn]:
    handle = exconn.start(exconn.Config.for_sim(sim.rest_url, sim.ws_url))
    try:
        yield handle
    finally:
        handle.shutdown()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll ``condition`` until it returns something truthy; bounded, fails saying what."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def view(ex: exconn.Exconn, actor: Any, symbol: str) -> View:
    reply = ex.system.ask(actor, GetView(symbol), 10)
    assert isinstance(reply, View), f"subscriber did not answer: {reply!r}"
    return reply


def book_matches_sim(
    ex: exconn.Exconn, actor: Any, sim: BinanceSpotSim, symbol: str, venue_symbol: str
) -> View | None:
    """The subscriber's book when it is at the simulator's update id (market paused)."""
    v = view(ex, actor, symbol)
    if v.valid and v.update_id == sim.last_update_id(venue_symbol):
        return v
    return None
