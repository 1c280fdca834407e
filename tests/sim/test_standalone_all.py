"""`exconn sim` serves every venue, prints where, and stops cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx

from tests.sim.test_bybit_client import Ws

PING = {
    "binance-spot": "/api/v3/ping",
    "binance-usdm": "/fapi/v1/ping",
    "bybit": "/v5/market/time",
}


@contextlib.contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, tuple[str, str]]]]:
    """Run `exconn sim ARGS`; yields the process and {venue: (rest url, ws url)} once READY."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "exconn.cli", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or []])
    reader.start()
    try:
        venues: dict[str, tuple[str, str]] = {}
        for _ in range(200):  # bounded: the banner is a few dozen lines
            line = lines.get(timeout=60)
            if line.startswith("VENUE "):
                _, name, rest, ws = line.split()
                venues[name] = (rest, ws)
            if line.startswith("READY "):
                break
        yield proc, venues
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=10)


def test_all_venues_answer_and_sigterm_exits_zero() -> None:
    with serving("--seed", "4") as (proc, venues):
        assert set(venues) == set(PING)
        for name, (rest, _ws) in venues.items():
            assert rest.startswith("http://127.0.0.1:")
            assert httpx.get(rest + PING[name], timeout=10).status_code == 200, name
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_bybit_flood_reaches_the_first_subscriber() -> None:
    n = 2_000
    with serving("--venues", "bybit", "--bybit-flood", f"linear:BTCUSDT:{n}") as (proc, venues):
        ws = Ws(venues["bybit"][1] + "/v5/public/linear")
        try:
            ws.send({"op": "subscribe", "args": ["orderbook.200.BTCUSDT"]})
            assert ws.recv()["success"] is True
            start_u = ws.recv()["data"]["u"]
            u = start_u
            for _ in range(n):  # bounded: one delta per update
                msg = ws.recv()
                assert msg["type"] == "delta" and msg["data"]["u"] == u + 1
                u = msg["data"]["u"]
        finally:
            ws.close()
        assert u == start_u + n
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
