"""Venue state of the Binance spot simulator: market, connections, faults, flood.

Only ever touched from the server's event-loop thread (the public facade marshals calls
onto it), so no locks: a REST snapshot, a subscription and a market step can never
interleave half-way.
"""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from aiohttp import web
from loguru import logger

from exconn.sim import control
from exconn.sim.connection import Connection, OutFlood, OutPing, OutText
from exconn.sim.flood_plan import FloodPlan
from exconn.sim.market import Book, Interval, Market, MarketSpec
from exconn.sim.symbols import SimSymbol
from exconn.sim.weights import WeightCounter
from exconn.sim.wire import SymbolWire, combined, encode

MAX_QUEUED_FRAMES = 100_000  # per connection; beyond this the client is a lost cause
BookView = tuple[int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def market_spec(sym: SimSymbol) -> MarketSpec:
    return MarketSpec(sym.symbol, sym.mid_ticks, sym.min_qty_steps, sym.max_level_steps)


class SpotCore:
    def __init__(
        self, symbols: list[SimSymbol], seed: int, levels: int,
        on_connections: Callable[[int], None] = lambda n: None,
    ) -> None:
        if not symbols:
            raise ValueError("at least one symbol is required")
        self.symbols = {s.symbol: s for s in symbols}
        if len(self.symbols) != len(symbols):
            raise ValueError("duplicate symbol")
        self.seed = seed
        self.levels = levels
        self.wires = {s.symbol: SymbolWire(s) for s in symbols}
        self.market = Market([market_spec(s) for s in symbols], levels, seed)
        self.stats: Counter[str] = Counter()
        self.weights = WeightCounter(wall_ms)
        self.paused = False
        self.connections: dict[int, Connection] = {}
        self._next_conn_id = 1
        self._on_connections = on_connections
        self._skip_next: set[str] = set()
        self._flood_prep: str | None = None
        self._flood_pending: FloodPlan | None = None
        self._flood_running: FloodPlan | None = None
        self._flood_done: dict[str, FloodPlan] = {}

    # ----------------------------------------------------------------- market
    @property
    def frozen(self) -> bool:
        """True while a flood is being prepared, waits for its client, or is being sent."""
        return bool(self._flood_prep or self._flood_pending or self._flood_running)

    def tick(self) -> None:
        if not self.paused and not self.frozen:
            self.step(1)

    def step(self, n: int) -> None:
        if self.frozen:
            raise RuntimeError("the market is frozen while a flood is prepared or running")
        for _ in range(n):
            for interval in self.market.step(wall_ms()):
                self._publish(interval)

    def _publish(self, interval: Interval) -> None:
        wire = self.wires[interval.symbol]
        prefix = interval.symbol.lower()
        for trade in interval.trades:
            self.stats["trades"] += 1
            self._deliver(f"{prefix}@trade", wire.trade(trade))
        if interval.diff.last_id < interval.diff.first_id:
            return  # no update id consumed this interval: Binance sends no event either
        self.stats["depth_events"] += 1
        if interval.symbol in self._skip_next:
            self._skip_next.discard(interval.symbol)
            self.stats["depth_events_skipped"] += 1
            return
        payload = wire.depth_update(interval.diff, interval.time_ms)
        self._deliver(f"{prefix}@depth@100ms", payload)
        # v0 serves "<s>@depth" on the same cadence as "@100ms" (real: 1000 ms).
        self._deliver(f"{prefix}@depth", payload)

    def _deliver(self, stream: str, payload: bytes) -> None:
        wrapped: bytes | None = None
        for conn in list(self.connections.values()):
            if stream not in conn.streams:
                continue
            if conn.combined:
                wrapped = wrapped or combined(stream, payload)
                data = wrapped
            else:
                data = payload
            if not conn.send(OutText(data, stream)):
                self._drop_slow(conn)

    def _drop_slow(self, conn: Connection) -> None:
        logger.debug("sim: dropping slow consumer {}", conn.id)
        self.stats["slow_consumers_dropped"] += 1
        conn.abort()

    def book(self, symbol: str, limit: int | None = None) -> BookView:
        snap = self.market.get(symbol).book.snapshot(limit)
        wire = self.wires[symbol]
        return snap.last_update_id, wire.decimal_levels(snap.bids), wire.decimal_levels(snap.asks)

    # ------------------------------------------------------------ connections
    def open_connection(
        self, ws: web.WebSocketResponse, request: web.Request, is_combined: bool,
        streams: list[str],
    ) -> Connection:
        conn = Connection(
            self._next_conn_id, ws, request, is_combined, streams, self.stats, MAX_QUEUED_FRAMES
        )
        self._next_conn_id += 1
        self.connections[conn.id] = conn
        conn.start_writer()
        self.stats["connections_opened"] += 1
        self._on_connections(len(self.connections))
        self._maybe_start_flood(conn, streams)
        return conn

    async def close_connection(self, conn: Connection) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        self._on_connections(len(self.connections))
        await conn.stop_writer()

    def subscriptions(self) -> list[str]:
        union: dict[str, None] = {}
        for conn in self.connections.values():
            union.update(conn.streams)
        return list(union)

    def on_pong(self, conn: Connection) -> None:
        conn.pongs += 1
        self.stats["pongs_received"] += 1

    def ping_all(self) -> None:
        payload = str(wall_ms()).encode()
        for conn in list(self.connections.values()):
            if not conn.send(OutPing(payload)):
                self._drop_slow(conn)

    async def close_all(self) -> None:
        conns = list(self.connections.values())
        for conn in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"shutdown"), 1.0)
            conn.abort()
            await self.close_connection(conn)

    # --------------------------------------------------------- control frames
    def handle_control(self, conn: Connection, text: str) -> None:
        self.stats["control_messages"] += 1
        parsed = control.parse(text)
        response = parsed if isinstance(parsed, dict) else self._execute(conn, parsed)
        if not conn.send(OutText(encode(response))):
            self._drop_slow(conn)
        if isinstance(parsed, control.Command) and parsed.method == "SUBSCRIBE":
            # After the ack is queued, so the flood can never overtake it.
            self._maybe_start_flood(conn, parsed.params)

    def _execute(self, conn: Connection, cmd: control.Command) -> dict[str, Any]:
        if cmd.method == "SUBSCRIBE":
            if len(set(conn.streams).union(cmd.params)) > control.MAX_STREAMS:
                return control.invalid("too many streams", cmd.id)
            conn.streams.update(dict.fromkeys(cmd.params))
            return {"result": None, "id": cmd.id}
        if cmd.method == "UNSUBSCRIBE":
            for stream in cmd.params:
                conn.streams.pop(stream, None)
            return {"result": None, "id": cmd.id}
        if cmd.method == "LIST_SUBSCRIPTIONS":
            return {"result": list(conn.streams), "id": cmd.id}
        return self._property(conn, cmd)

    @staticmethod
    def _property(conn: Connection, cmd: control.Command) -> dict[str, Any]:
        expected = 2 if cmd.method == "SET_PROPERTY" else 1
        if len(cmd.params) != expected:
            return control.invalid("wrong number of parameters", cmd.id)
        if not isinstance(cmd.params[0], str):
            return control.invalid("property name must be a string", cmd.id)
        if cmd.params[0] != "combined":
            return control.error(0, "Unknown property", cmd.id)
        if cmd.method == "GET_PROPERTY":
            return {"result": conn.combined, "id": cmd.id}
        if not isinstance(cmd.params[1], bool):
            return control.error(1, "Invalid value type: expected Boolean", cmd.id)
        conn.combined = cmd.params[1]
        return {"result": None, "id": cmd.id}

    # ----------------------------------------------------------------- faults
    def inject_malformed(self, count: int) -> None:
        for conn in self.connections.values():
            conn.malformed_pending += count

    def skip_sequence(self, symbol: str) -> None:
        self._require(symbol)
        self._skip_next.add(symbol)

    def drop_connections(self) -> int:
        conns = list(self.connections.values())
        for conn in conns:
            conn.abort()
        self.stats["connections_dropped"] += len(conns)
        return len(conns)

    def _require(self, symbol: str) -> None:
        if symbol not in self.symbols:
            raise KeyError(f"unknown symbol {symbol!r}")

    # ------------------------------------------------------------------ flood
    def begin_flood(self, symbol: str) -> Book:
        """Freeze the market and hand out a copy of the book the flood starts from."""
        self._require(symbol)
        if self.frozen:
            raise RuntimeError("a flood is already prepared or running")
        self._flood_prep = symbol
        return self.market.get(symbol).book.copy()

    def install_flood(self, plan: FloodPlan | None) -> None:
        """Arm the prepared plan (None abandons the preparation)."""
        self._flood_prep = None
        self._flood_pending = plan
        if plan is not None:
            self._flood_done[plan.symbol] = plan

    def flood_final_book(self, symbol: str) -> BookView:
        plan = self._flood_done.get(symbol)
        if plan is None:
            raise KeyError(f"no flood prepared for {symbol!r}")
        snap = plan.final_book.snapshot()
        wire = self.wires[symbol]
        return snap.last_update_id, wire.decimal_levels(snap.bids), wire.decimal_levels(snap.asks)

    def _maybe_start_flood(self, conn: Connection, streams: Iterable[str]) -> None:
        plan = self._flood_pending
        if plan is None:
            return
        prefix = plan.symbol.lower()
        wanted = {f"{prefix}@depth@100ms", f"{prefix}@depth"}
        stream = next((s for s in streams if s in wanted), None)
        if stream is None:
            return
        self._flood_pending, self._flood_running = None, plan
        logger.debug("sim: flooding connection {} with {} updates", conn.id, plan.n_updates)
        item = OutFlood(
            plan.chunks_for(conn.combined, stream), plan.n_updates,
            lambda completed: self._finish_flood(plan, completed),
        )
        if not conn.send(item):
            self._finish_flood(plan, False)

    def _finish_flood(self, plan: FloodPlan, completed: bool) -> None:
        # The ids are spent whether or not the client got them all: adopt the final book.
        self.market.get(plan.symbol).replace_book(plan.final_book.copy())
        self._flood_running = None
        self.stats["floods_completed" if completed else "floods_aborted"] += 1
        if completed:
            self.stats["flood_events_sent"] += plan.n_updates
