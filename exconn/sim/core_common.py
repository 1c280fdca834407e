"""Helpers every venue core uses the same way: time, symbols, clock skew, socket teardown."""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from exconn.sim.fault_registry import FaultKind, FaultRegistry
from exconn.sim.market import MarketSpec
from exconn.sim.symbols import SimSymbol

# (last update id, bids, asks) as the facades hand a book to tests.
BookView = tuple[int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def market_spec(sym: SimSymbol) -> MarketSpec:
    return MarketSpec(sym.symbol, sym.mid_ticks, sym.min_qty_steps, sym.max_level_steps)


def symbol_index(symbols: list[SimSymbol]) -> dict[str, SimSymbol]:
    if not symbols:
        raise ValueError("at least one symbol is required")
    index = {s.symbol: s for s in symbols}
    if len(index) != len(symbols):
        raise ValueError("duplicate symbol")
    return index


def skewed(faults: FaultRegistry, venue: str, now: int) -> int:
    """`now` moved by an active CLOCK_SKEW fault: the venue's clock as clients see it."""
    fault = faults.active(FaultKind.CLOCK_SKEW, now, venue=venue)
    return now + int(fault.params.get("skew_ms", 0)) if fault else now


class SimSocket(Protocol):
    """What the venues' connection classes share: an id, the aiohttp socket, a hard cut."""

    id: int
    ws: Any

    def abort(self) -> None: ...


C = TypeVar("C", bound=SimSocket)


def drop_all(connections: Mapping[int, SimSocket], stats: Counter[str]) -> int:
    """Cut every socket as a network failure would; returns how many."""
    conns = list(connections.values())
    for conn in conns:
        conn.abort()
    stats["connections_dropped"] += len(conns)
    return len(conns)


async def close_all(connections: Mapping[int, C], forget: Callable[[C], Awaitable[Any]]) -> None:
    """Shutdown: a 1001 close frame to each socket (1 s at most), then cut and forget it."""
    for conn in list(connections.values()):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.ws.close(code=1001, message=b"shutdown"), 1.0)
        conn.abort()
        await forget(conn)
