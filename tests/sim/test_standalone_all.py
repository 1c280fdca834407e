"""`exconn sim` serves every venue, prints where, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading

import httpx

PING = {
    "binance-spot": "/api/v3/ping",
    "binance-usdm": "/fapi/v1/ping",
    "bybit": "/v5/market/time",
}


def test_all_venues_answer_and_sigterm_exits_zero() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "exconn.cli", "sim", "--seed", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or []])
    reader.start()
    try:
        venues: dict[str, str] = {}
        for _ in range(200):  # bounded: the banner is a few dozen lines
            line = lines.get(timeout=60)
            if line.startswith("VENUE "):
                _, name, rest, _ws = line.split()
                venues[name] = rest
            if line.startswith("READY "):
                break
        assert set(venues) == set(PING)
        for name, rest in venues.items():
            assert rest.startswith("http://127.0.0.1:")
            assert httpx.get(rest + PING[name], timeout=10).status_code == 200, name
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=10)
