"""Suite-wide fixtures: where the shared corpus is, the check that no process outlives the
suite (Thespian systems included), and simulators with a still market."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exconn.sim import BinanceSpotSim, BinanceUsdmSim, BybitSim

SHARED = Path(os.environ.get("EXCONN_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CORPUS = SHARED / "corpus"
REFERENCE = SHARED / "reference"
LEFTOVER_GRACE_SECONDS = 10.0


def require_shared(path: Path) -> Path:
    """Skip (saying why) when the third-party corpus beside the repo is missing."""
    if not path.exists():
        pytest.skip(
            f"{path} not found: tests on recorded exchange data need ../shared beside the repo"
        )
    return path


@pytest.fixture
def corpus() -> Path:
    return require_shared(CORPUS)


@pytest.fixture
def reference() -> Path:
    return require_shared(REFERENCE)


def _marked_processes(marker: bytes) -> list[int]:
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":  # zombies are already gone
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def leftover_processes() -> list[int]:
    """Processes started by this test run that are still alive (needs EXCONN_TEST_RUN, which
    scripts/test sets; every descendant inherits it)."""
    run = os.environ.get("EXCONN_TEST_RUN")
    if not run:
        return []
    marker = f"EXCONN_TEST_RUN={run}".encode()
    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    while True:
        left = _marked_processes(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    left = leftover_processes()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if left:
        for pid in left:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                cmd = "?"
            if reporter:
                reporter.write_line(f"LEFTOVER PROCESS {pid}: {cmd}")
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter and os.environ.get("EXCONN_TEST_RUN"):
        reporter.write_line("no process started by the suite is left")


# Simulators with a still market (resting orders stay resting), for the account and order
# tests; a module that needs other settings defines its own fixture of the same name.
def _paused(sim: Any) -> Iterator[Any]:
    try:
        sim.start()
        sim.pause()
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def spot_sim() -> Iterator[BinanceSpotSim]:
    yield from _paused(BinanceSpotSim(seed=7, depth_interval_ms=50))


@pytest.fixture
def usdm_sim() -> Iterator[BinanceUsdmSim]:
    yield from _paused(BinanceUsdmSim(seed=7, depth_interval_ms=50))


@pytest.fixture
def bybit_sim() -> Iterator[BybitSim]:
    yield from _paused(BybitSim(seed=5, depth_interval_ms=50, levels=60))
