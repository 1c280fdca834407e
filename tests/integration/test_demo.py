"""`exconn demo` as a user runs it: exits 0, prints books and trades, leaves nothing behind
(the suite's leftover-process check covers the last part)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_prints_books_and_trades_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "exconn.cli", "demo", "--seconds", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "simulator: REST http://127.0.0.1:" in out
    assert "BTC/USDT  book #" in out and "ETH/USDT  book #" in out
    assert " trade " in out
    assert "demo done:" in out and "0 resets" in out
