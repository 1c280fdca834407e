"""Simulator fixtures: every simulator a test starts is stopped, pass or fail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exconn.sim import BinanceSpotSim
from tests.conftest import REFERENCE, require_shared

SimFactory = Callable[..., BinanceSpotSim]


@pytest.fixture
def make_sim() -> Iterator[SimFactory]:
    started: list[BinanceSpotSim] = []

    def factory(**kwargs: Any) -> BinanceSpotSim:
        sim = BinanceSpotSim(**kwargs)
        started.append(sim)
        return sim.start()

    try:
        yield factory
    finally:
        for sim in started:
            sim.stop()


@pytest.fixture
def sim(make_sim: SimFactory) -> BinanceSpotSim:
    """A paused simulator: tests drive the market with step() so runs repeat exactly."""
    s = make_sim(seed=7, depth_interval_ms=20)
    s.pause()
    return s


@pytest.fixture
def payloads() -> Path:
    return require_shared(REFERENCE / "payloads")
