"""Bybit kline pushes: a bar is pushed with ``confirm:false`` while open and once more with
``confirm:true`` when the next bar begins (what exconn's kline topic relies on to tell a
closed bar from a changing one)."""

from __future__ import annotations

from typing import Any

import pytest

from exconn.sim import bybit_core
from exconn.sim.bybit_core import BybitCore
from exconn.sim.bybit_tape import TapeTrade
from exconn.sim.symbols import DEFAULT_SYMBOLS

MINUTE_MS = 60_000
T0 = 1_700_000_040_000  # a minute boundary


def test_a_bar_is_confirmed_once_when_the_next_begins(monkeypatch: pytest.MonkeyPatch) -> None:
    core = BybitCore({"spot": list(DEFAULT_SYMBOLS)}, seed=1, levels=20)
    symbol = DEFAULT_SYMBOLS[0].symbol
    tape = core.tapes[("spot", symbol)]
    sent: list[dict[str, Any]] = []
    topic = f"kline.1.{symbol}"
    monkeypatch.setattr(core, "_subscribers", lambda cat, t: [object()] if t == topic else [])
    monkeypatch.setattr(core, "_send_to", lambda conn, msg, sym: sent.append(msg))
    now = [T0 + 1_000]
    monkeypatch.setattr(bybit_core, "wall_ms", lambda: now[0])

    tape.add(TapeTrade(1, T0 + 500, tape.last_price, 3, True, 1, "PlusTick"))
    core._publish_klines("spot", symbol)
    now[0] = T0 + 30_000
    core._publish_klines("spot", symbol)
    now[0] = T0 + MINUTE_MS + 10
    core._publish_klines("spot", symbol)
    core._publish_klines("spot", symbol)

    bars = [[(d["start"], d["confirm"]) for d in m["data"]] for m in sent]
    assert bars == [
        [(T0, False)],
        [(T0, False)],
        [(T0, True), (T0 + MINUTE_MS, False)],
        [(T0 + MINUTE_MS, False)],
    ]
    closed = sent[2]["data"][0]
    assert closed["volume"] != "0" and closed["end"] == T0 + MINUTE_MS - 1
