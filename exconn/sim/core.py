"""Venue state of the Binance spot simulator: market, connections, faults, flood.

Only ever touched from the server's event-loop thread (the public facade marshals calls
onto it), so no locks: a REST snapshot, a subscription and a market step can never
interleave half-way.
"""

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from loguru import logger

from exconn.sim import control
from exconn.sim.binance_spot_marketdata import INTERVALS, SymbolData
from exconn.sim.binance_spot_trading import SpotTrading
from exconn.sim.connection import Connection, OutClose, OutFlood, OutPing, OutText
from exconn.sim.core_common import (
    BookView,
    close_all,
    drop_all,
    market_spec,
    skewed,
    symbol_index,
    wall_ms,
)
from exconn.sim.fault_registry import FaultKind, FaultRegistry
from exconn.sim.flood_plan import FloodPlan
from exconn.sim.limits import WS_CLOSE_POLICY_VIOLATION, BinanceLimiter, WsConnectionLimits
from exconn.sim.market import Book, Interval, Market
from exconn.sim.symbols import SimSymbol
from exconn.sim.weights import WeightCounter
from exconn.sim.wire import SymbolWire, combined, encode
from exconn.sim.ws_writer import MAX_QUEUED_FRAMES

VENUE = "binance_spot"  # how faults name this venue
PARTIAL_DEPTHS = (5, 10, 20)
KLINE_STREAM_MS = 2000  # kline pushes: every 2 s (1 s for the 1s interval), as documented
TICKER_STREAM_MS = 1000


class SpotCore:
    def __init__(
        self,
        symbols: list[SimSymbol],
        seed: int,
        levels: int,
        on_connections: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.symbols = symbol_index(symbols)
        self.seed = seed
        self.levels = levels
        self.wires = {s.symbol: SymbolWire(s) for s in symbols}
        self.market = Market([market_spec(s) for s in symbols], levels, seed)
        self.stats: Counter[str] = Counter()
        self.weights = WeightCounter(wall_ms)
        self.limiter = BinanceLimiter()
        self.faults = FaultRegistry()
        self.ws_messages_per_s = 5
        self.ws_lifetime_ms = 24 * 3_600_000
        self.interval_ms = 100
        self.ticks = 0
        self.trading = SpotTrading(self.symbols, self.market, seed, self.clock)
        self.trading.sink = self._user_event
        self.data = {
            s.symbol: SymbolData(s, self.market.get(s.symbol).engine, self._emit, self._wanted)
            for s in symbols
        }
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
            self.ticks += 1
            for interval in self.market.step(wall_ms()):
                self._publish(interval)

    def clock(self) -> int:
        """The venue's clock: wall time plus any CLOCK_SKEW fault."""
        return skewed(self.faults, VENUE, wall_ms())

    def _every(self, period_ms: int) -> bool:
        """True on the ticks that fall on a `period_ms` grid (counted in steps, so a paused
        simulator driven by step() repeats exactly)."""
        return (self.ticks - 1) % max(1, period_ms // self.interval_ms) == 0

    def _publish(self, interval: Interval) -> None:
        wire = self.wires[interval.symbol]
        prefix = interval.symbol.lower()
        self._publish_periodic(interval.symbol, prefix, interval.time_ms)
        if interval.diff.last_id < interval.diff.first_id:
            return  # no update id consumed this interval: Binance sends no event either
        self.stats["depth_events"] += 1
        if interval.symbol in self._skip_next or self.faults.take(
            FaultKind.SKIP_SEQUENCE, wall_ms(), venue=VENUE, symbol=interval.symbol
        ):
            self._skip_next.discard(interval.symbol)
            self.stats["depth_events_skipped"] += 1
            return
        payload = wire.depth_update(interval.diff, interval.time_ms)
        self._deliver(f"{prefix}@depth@100ms", payload, interval.symbol)
        # "<s>@depth" has the same cadence as "@100ms" (real: 1000 ms), kept from v0 so a
        # client's sync logic sees every id on either name.
        self._deliver(f"{prefix}@depth", payload, interval.symbol)

    def _publish_periodic(self, symbol: str, prefix: str, time_ms: int) -> None:
        data = self.data[symbol]
        for n in PARTIAL_DEPTHS:
            fast, slow = f"{prefix}@depth{n}@100ms", f"{prefix}@depth{n}"
            if self._wanted(fast) or (self._every(1000) and self._wanted(slow)):
                payload = data.partial_depth(n)
                self._deliver(fast, payload)
                if self._every(1000):
                    self._deliver(slow, payload)
        if self._every(TICKER_STREAM_MS):
            for name, mini in (("ticker", False), ("miniTicker", True)):
                if self._wanted(f"{prefix}@{name}"):
                    self._deliver(f"{prefix}@{name}", encode(data.ticker_event(time_ms, mini)))
        for conn_stream in self._kline_streams(prefix):
            interval = conn_stream.partition("@kline_")[2]
            period = 1000 if interval == "1s" else KLINE_STREAM_MS
            if self._every(period):
                self._deliver(conn_stream, encode(data.kline_event(interval, time_ms)))

    def _kline_streams(self, prefix: str) -> set[str]:
        wanted: set[str] = set()
        head = f"{prefix}@kline_"
        for conn in self.connections.values():
            wanted.update(s for s in conn.streams if s.startswith(head))
        return {s for s in wanted if s[len(head) :] in INTERVALS}

    def _wanted(self, stream: str) -> bool:
        return any(stream in conn.streams for conn in self.connections.values())

    def _emit(self, stream: str, payload: bytes) -> None:
        if stream.endswith("@trade"):
            self.stats["trades"] += 1
        elif stream.endswith("@aggTrade") and self.faults.take(
            FaultKind.SKIP_AGG_TRADE, wall_ms(), venue=VENUE, symbol=stream[:-9].upper()
        ):
            # Sent to nobody, though its id is spent and /api/v3/aggTrades serves it: a client
            # sees the aggregate ids jump.
            self.stats["agg_trades_skipped"] += 1
            return
        self._deliver(stream, payload)

    def _user_event(self, account: str, event: dict[str, Any]) -> None:
        """Wrap a user-data event for every WS API subscription of `account`."""
        times = 1
        if event.get("e") == "executionReport" and event.get("x") == "TRADE":
            symbol = event.get("s")
            if self.faults.take(FaultKind.DUPLICATE_FILL, wall_ms(), venue=VENUE, symbol=symbol):
                self.stats["fills_duplicated"] += 1
                times = 2  # the same frame again: same trade id, as a venue replay would be
        for conn in list(self.connections.values()):
            session = conn.wsapi
            if session is None:
                continue
            for sub_id in session.subscriptions_of(account):
                frame = encode({"subscriptionId": sub_id, "event": event})
                for _ in range(times):
                    if not conn.send(OutText(frame)):
                        self._drop_slow(conn)

    def _deliver(self, stream: str, payload: bytes, symbol: str | None = None) -> None:
        wrapped: bytes | None = None
        for conn in list(self.connections.values()):
            if stream not in conn.streams:
                continue
            if symbol is not None and self.faults.take(
                FaultKind.SKIP_SEQUENCE,
                wall_ms(),
                venue=VENUE,
                symbol=symbol,
                connection=conn.id,
            ):
                continue  # a fault aimed at this connection only (untargeted ones fired above)
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
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        is_combined: bool,
        streams: list[str],
    ) -> Connection:
        conn = Connection(
            self._next_conn_id, ws, request, is_combined, streams, self.stats, MAX_QUEUED_FRAMES
        )
        self._next_conn_id += 1
        conn.opened_ms = wall_ms()
        conn.limits = WsConnectionLimits(
            conn.opened_ms,
            max_per_second=self.ws_messages_per_s,
            max_lifetime_ms=self.ws_lifetime_ms,
        )
        self.connections[conn.id] = conn
        conn.start_writer()
        # The 24 h cap (compressible for tests): closed like a server-side disconnect.
        conn.lifetime_handle = asyncio.get_running_loop().call_later(
            self.ws_lifetime_ms / 1000, self._expire_connection, conn
        )
        self.stats["connections_opened"] += 1
        self._on_connections(len(self.connections))
        self._maybe_start_flood(conn, streams)
        return conn

    def _expire_connection(self, conn: Connection) -> None:
        if conn.id in self.connections:
            self.stats["connections_expired"] += 1
            conn.send(OutClose(1001, b"connection lifetime exceeded"))

    def incoming(self, conn: Connection) -> bool:
        """Count one client frame; False: over the per-connection rate, closed with 1008."""
        limits = conn.limits
        assert isinstance(limits, WsConnectionLimits)
        if limits.incoming(wall_ms()):
            return True
        self.stats["ws_rate_closes"] += 1
        conn.send(OutClose(WS_CLOSE_POLICY_VIOLATION, b"Too many messages"))
        return False

    async def close_connection(self, conn: Connection) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        if conn.lifetime_handle is not None:
            conn.lifetime_handle.cancel()
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
        await close_all(self.connections, self.close_connection)

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

    def sweep_faults(self) -> None:
        """Apply socket faults to the connections they cover (run on a short timer and
        whenever a fault is added, so they act even while the market is quiet)."""
        now = wall_ms()
        for conn in list(self.connections.values()):
            self._sweep_connection(conn, now)

    def _sweep_connection(self, conn: Connection, now: int) -> None:
        def take(kind: FaultKind) -> Any:
            return self.faults.take(kind, now, venue=VENUE, connection=conn.id)

        stalled = self.faults.active(FaultKind.STALL, now, venue=VENUE, connection=conn.id)
        if stalled and conn.flowing.is_set():
            self.stats["stalls"] += 1
            conn.flowing.clear()
        elif not stalled and not conn.flowing.is_set():
            conn.flowing.set()
        if take(FaultKind.MALFORMED):
            conn.malformed_pending += 1
        if conn.wsapi is not None and take(FaultKind.EXPIRE_SESSION):
            for frame in conn.wsapi.expire(self.clock()):
                conn.send(OutText(frame))
        if take(FaultKind.SERVER_SHUTDOWN):
            event = encode({"e": "serverShutdown", "E": self.clock()})
            conn.send(OutText(combined("!serverShutdown", event) if conn.combined else event))
            conn.send(OutClose(1001, b"server shutdown"))
        if take(FaultKind.CLOSE_1008):
            conn.flowing.set()
            conn.send(OutClose(WS_CLOSE_POLICY_VIOLATION, b"Policy violation"))
        if take(FaultKind.DROP):
            self.stats["connections_dropped"] += 1
            conn.abort()

    def drop_connections(self) -> int:
        return drop_all(self.connections, self.stats)

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
            plan.chunks_for(conn.combined, stream),
            plan.n_updates,
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
