"""Start/stop discipline and the standalone entry point."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import websocket

import exconn.sim
from exconn.sim import BinanceSpotSim, run_standalone
from tests.sim.helpers import WsClient


def sim_threads() -> int:
    return sum(t.name.startswith("binance-spot-sim") for t in threading.enumerate())


def test_stop_closes_clients_listener_and_thread() -> None:
    threads_before = sim_threads()
    sim = BinanceSpotSim(ping_interval_s=60).start()
    try:
        client = WsClient(f"{sim.ws_url}/ws/btcusdt@depth@100ms")
        assert sim.wait_for_connections(1, timeout=10)
        rest_url = sim.rest_url
    finally:
        sim.stop()
    sim.stop()  # idempotent
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        for _ in range(10_000):  # bounded: the close frame follows at most the queued events
            client.ws.recv()
    client.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{rest_url}/api/v3/ping", timeout=5)
    assert sim_threads() == threads_before


def test_context_manager_and_loopback_only() -> None:
    with BinanceSpotSim(levels=5) as sim:
        assert len(sim.book("SOLUSDT")[1]) == 5
    with pytest.raises(ValueError):
        BinanceSpotSim(host="0.0.0.0")


def test_standalone_prints_ready_and_exits_zero_on_sigterm() -> None:
    package_root = Path(os.path.abspath(exconn.sim.__file__)).parents[2]
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "exconn.sim", "--seed", "3", "--flood", "ETHUSDT:100"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        cwd=package_root,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read_stdout() -> None:
        for line in proc.stdout or []:
            lines.put(line)

    reader = threading.Thread(target=read_stdout)
    reader.start()
    try:
        ready = ""
        for _ in range(50):  # bounded: the banner is a handful of lines
            line = lines.get(timeout=30)
            if line.startswith("READY "):
                ready = line
                break
        _, rest_url, ws_url = ready.split()
        assert ws_url.startswith("ws://127.0.0.1:")
        assert httpx.get(f"{rest_url}/api/v3/ping", timeout=10).json() == {}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=10)


def test_standalone_rejects_bad_flood_argument() -> None:
    with pytest.raises(SystemExit) as exc:
        run_standalone(["--flood", "BTCUSDT"])
    assert exc.value.code == 2
