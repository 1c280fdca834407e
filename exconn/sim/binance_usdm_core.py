"""Venue state of the Binance USD-M simulator: market, streams, connections, faults.

Only ever touched from the server's event-loop thread (the facade marshals calls onto it),
so a REST snapshot, an order and a market step never interleave half-way.

Depth events carry `pu` = the `u` of the previous depth event of the symbol. A skipped
event (fault) still spends its ids and still becomes the next event's `pu`, so a client
that missed it sees `pu != previous u`, exactly as after a real loss.
"""

from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
from loguru import logger

from exconn.sim.binance_spot_marketdata import interval_bounds
from exconn.sim.binance_usdm_conn import OutClose, OutPing, OutText, UsdmConnection
from exconn.sim.binance_usdm_klines import INTERVALS_MS, TradeHistory
from exconn.sim.binance_usdm_symbols import ContractFormat
from exconn.sim.binance_usdm_trading import LISTEN_KEY_VALIDITY_MS, Trading
from exconn.sim.binance_usdm_wire import (
    agg_trade,
    book_ticker,
    depth_update,
    mark_price,
    partial_depth,
    ticker_24hr,
)
from exconn.sim.core_common import close_all, drop_all, market_spec, skewed, symbol_index
from exconn.sim.fault_registry import FaultKind, FaultRegistry
from exconn.sim.market import Interval, Market
from exconn.sim.symbols import SimSymbol

VENUE = "binance_usdm"
_encode = msgspec.json.Encoder().encode
DEPTH_SUFFIXES = ("@depth", "@depth@100ms", "@depth@250ms", "@depth@500ms")
PARTIAL_LEVELS = (5, 10, 20)
MAX_STREAMS = 200
# Kline streams: every REST interval and the calendar month (no 1s klines on USD-M).
KLINE_STREAM_INTERVALS = (*INTERVALS_MS, "1M")


def route_of(stream: str) -> str:
    """Which routed path serves a stream (binance.md §8.1)."""
    if stream == "!bookTicker":
        return "public"
    _, _, kind = stream.partition("@")
    if kind.startswith("depth") or kind == "bookTicker" or kind.startswith("rpiDepth"):
        return "public"
    return "market"


class UsdmCore:
    def __init__(
        self,
        symbols: list[SimSymbol],
        seed: int,
        levels: int,
        clock: Callable[[], int],
        *,
        depth_interval_ms: int,
        listen_key_validity_ms: int = LISTEN_KEY_VALIDITY_MS,
        ping_interval_ms: int = 180_000,
        on_connections: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.symbols = symbol_index(symbols)
        self.seed = seed
        self.levels = levels
        self.clock = clock
        self.fmts = {s.symbol: ContractFormat(s) for s in symbols}
        self.market = Market([market_spec(s) for s in symbols], levels, seed)
        self.history = {s.symbol: TradeHistory(self.fmts[s.symbol], s.mid_ticks) for s in symbols}
        self.prev_u = {s: self.market.get(s).book.update_id for s in self.symbols}
        self._tops: dict[str, tuple[tuple[int, int], tuple[int, int]] | None] = dict.fromkeys(
            self.symbols
        )
        self.stats: Counter[str] = Counter()
        self.faults = FaultRegistry()
        self.trading = Trading(
            self.symbols,
            self.fmts,
            self.market.engines(),
            self.mark_ticks,
            self.now_ms,
            self.deliver_user,
            seed,
            listen_key_validity_ms,
        )
        self.paused = False
        self.connections: dict[int, UsdmConnection] = {}
        self.max_connection_ms = 24 * 3600 * 1000
        self.ping_interval_ms = ping_interval_ms
        self._next_conn_id = 1
        self._on_connections = on_connections
        self._steps = 0
        # markPrice: default every 3 s, `@1s` (and `@ticker`) every second, counted in market
        # intervals.
        self._mark_every_1s = max(1, 1000 // depth_interval_ms)
        self._mark_every = 3 * self._mark_every_1s

    # ------------------------------------------------------------------- clock
    def now_ms(self) -> int:
        return skewed(self.faults, VENUE, self.clock())

    def mark_ticks(self, symbol: str) -> int:
        """Mark price = book mid on the tick grid (no index, no premium in the sim)."""
        book = self.market.get(symbol).book
        if book.bids and book.asks:
            return (book.best_bid() + book.best_ask()) // 2
        return self.history[symbol].last_price()

    # ------------------------------------------------------------------ market
    def tick(self) -> None:
        self.housekeeping()
        if not self.paused:
            self.step(1)

    def step(self, n: int) -> None:
        for _ in range(n):
            now = self.now_ms()
            for interval in self.market.step(now):
                self._publish(interval, now)
            self._steps += 1
            self._periodic(now)

    def _publish(self, interval: Interval, now: int) -> None:
        symbol, fmt = interval.symbol, self.fmts[interval.symbol]
        prefix = symbol.lower()
        for trade in interval.trades:
            self.history[symbol].add(trade)
            self.stats["trades"] += 1
            if not self._skip_agg_trade(symbol, f"{prefix}@aggTrade"):
                self._deliver(f"{prefix}@aggTrade", agg_trade(fmt, trade, now))
        diff = interval.diff
        if diff.last_id < diff.first_id:
            return  # no id spent: no event, as on Binance
        payload = depth_update(fmt, diff, self.prev_u[symbol], now, interval.time_ms)
        self.prev_u[symbol] = diff.last_id
        self.stats["depth_events"] += 1
        if self.faults.take(FaultKind.SKIP_SEQUENCE, now, venue=VENUE, symbol=symbol):
            self.stats["depth_events_skipped"] += 1
        else:
            for suffix in DEPTH_SUFFIXES:
                self._deliver(prefix + suffix, payload, skip_symbol=symbol)
        self._partial_depth(symbol, diff.first_id, payload["pu"], now)
        self._book_ticker(symbol, now)

    def _skip_agg_trade(self, symbol: str, stream: str) -> bool:
        """The SKIP_AGG_TRADE fault: this aggTrade goes to nobody (REST still serves it), so
        subscribers see the aggregate ids jump. Fired only when someone would have missed it."""
        wall = self.clock()
        if self.faults.active(FaultKind.SKIP_AGG_TRADE, wall, venue=VENUE, symbol=symbol) is None:
            return False
        if stream not in self.subscriptions():
            return False
        self.faults.take(FaultKind.SKIP_AGG_TRADE, wall, venue=VENUE, symbol=symbol)
        self.stats["agg_trades_skipped"] += 1
        return True

    def _partial_depth(self, symbol: str, first_id: int, prev_u: int, now: int) -> None:
        prefix = symbol.lower()
        wanted = self.subscriptions()
        for n in PARTIAL_LEVELS:
            names = [f"{prefix}@depth{n}{s}" for s in ("", "@100ms", "@500ms")]
            if any(name in wanted for name in names):
                snap = self.market.get(symbol).book.snapshot(n)
                payload = partial_depth(self.fmts[symbol], snap, first_id, prev_u, now)
                for name in names:
                    self._deliver(name, payload)

    def _book_ticker(self, symbol: str, now: int) -> None:
        book = self.market.get(symbol).book
        if not book.bids or not book.asks:
            return
        bid, ask = book.best_bid(), book.best_ask()
        top = ((bid, book.bids[bid]), (ask, book.asks[ask]))
        if top == self._tops[symbol]:
            return
        self._tops[symbol] = top
        payload = book_ticker(self.fmts[symbol], book.update_id, top[0], top[1], now)
        self._deliver(f"{symbol.lower()}@bookTicker", payload)
        self._deliver("!bookTicker", payload)

    def _periodic(self, now: int) -> None:
        wanted = self.subscriptions()
        for symbol, fmt in self.fmts.items():
            prefix = symbol.lower()
            mark = fmt.price(self.mark_ticks(symbol))
            if self._steps % self._mark_every_1s == 0:
                self._deliver(f"{prefix}@markPrice@1s", mark_price(fmt, mark, now))
            if self._steps % self._mark_every == 0:
                self._deliver(f"{prefix}@markPrice", mark_price(fmt, mark, now))
            if self._steps % self._mark_every_1s == 0 and f"{prefix}@ticker" in wanted:
                stats = self.history[symbol].stats_24h(now)
                self._deliver(f"{prefix}@ticker", ticker_24hr(symbol, stats, now))
            for interval in KLINE_STREAM_INTERVALS:
                stream = f"{prefix}@kline_{interval}"
                if stream in wanted:
                    # Calendar-aware bounds: weeks open on Monday, months on the 1st.
                    k = self.history[symbol].kline(*interval_bounds(interval, now))
                    k["i"] = interval
                    self._deliver(stream, {"e": "kline", "E": now, "s": symbol, "k": k})

    # -------------------------------------------------------------- delivery
    def _deliver(
        self, stream: str, payload: dict[str, Any], skip_symbol: str | None = None
    ) -> None:
        raw: str | None = None
        wrapped: str | None = None
        route = route_of(stream)
        now = self.clock()
        for conn in list(self.connections.values()):
            if stream not in conn.streams or conn.route != route or conn.closing:
                continue
            if self._conn_fault(FaultKind.STALL, conn, now, consume=False):
                self.stats["frames_stalled"] += 1
                continue
            if skip_symbol and self._conn_fault(
                FaultKind.SKIP_SEQUENCE, conn, now, symbol=skip_symbol
            ):
                self.stats["depth_events_skipped"] += 1
                continue
            if conn.combined:
                wrapped = wrapped or _encode({"stream": stream, "data": payload}).decode()
                text = wrapped
            else:
                raw = raw or _encode(payload).decode()
                text = raw
            self._send_event(conn, text, stream, now)

    def _send_event(self, conn: UsdmConnection, text: str, stream: str, now: int) -> None:
        if self._conn_fault(FaultKind.MALFORMED, conn, now):
            garbage = (
                '{"stream": "' + stream + '", "data": {bad json'
                if conn.combined
                else ('{"e": "' + stream.partition("@")[2] + '", "E": {bad json')
            )
            self._send(conn, OutText(garbage))
            self.stats["malformed_sent"] += 1
        self._send(conn, OutText(text))

    def _send(self, conn: UsdmConnection, item: OutText | OutPing | OutClose) -> None:
        if not conn.send(item):
            logger.debug("sim-usdm: dropping slow consumer {}", conn.id)
            self.stats["slow_consumers_dropped"] += 1
            conn.abort()

    def stalled(self, conn: UsdmConnection) -> bool:
        return self._conn_fault(FaultKind.STALL, conn, self.clock(), consume=False)

    def _conn_fault(
        self,
        kind: FaultKind,
        conn: UsdmConnection,
        now: int,
        *,
        symbol: str | None = None,
        consume: bool = True,
    ) -> bool:
        """A fault aimed at this connection (or at any connection)."""
        args: dict[str, Any] = {"venue": VENUE, "connection": conn.id}
        if symbol is not None:
            args["symbol"] = symbol
        fault = self.faults.active(kind, now, **args)
        if fault is None:
            return False
        if kind is FaultKind.SKIP_SEQUENCE and fault.target.connection is None:
            return False  # symbol-wide skips are taken once per event in _publish
        if consume:
            self.faults.take(kind, now, **args)
        return True

    def deliver_user(self, account: str, payload: dict[str, Any]) -> None:
        key = self.trading.listen_key_for(account)
        if key is None:
            return
        now = self.clock()
        text: str | None = None
        times = 1
        order = payload.get("o")
        if payload.get("e") == "ORDER_TRADE_UPDATE" and isinstance(order, dict):
            fill = order.get("x") == "TRADE"
            symbol = order.get("s")
            if fill and self.faults.take(FaultKind.DUPLICATE_FILL, now, venue=VENUE, symbol=symbol):
                self.stats["fills_duplicated"] += 1
                times = 2  # the same event again: same trade id, as a venue replay would be
        for conn in list(self.connections.values()):
            if conn.listen_key != key.key or conn.closing:
                continue
            if conn.events is not None and payload.get("e") not in conn.events:
                continue
            if self._conn_fault(FaultKind.STALL, conn, now, consume=False):
                continue
            body = {"stream": key.key, "data": payload} if conn.combined else payload
            text = _encode(body).decode()
            for _ in range(times):
                self._send_event(conn, text, key.key, now)
        self.stats["user_events"] += 1

    # ----------------------------------------------------------- housekeeping
    def housekeeping(self) -> None:
        """Faults aimed at connections, lifetimes, pings and listenKey expiry."""
        now = self.now_ms()
        wall = self.clock()
        for key in self.trading.expire_due(now):
            self.listen_key_expired(key.key, now)
        for conn in list(self.connections.values()):
            if conn.closing:
                continue
            expire = conn.listen_key and self._conn_fault(FaultKind.EXPIRE_SESSION, conn, wall)
            if expire and self.trading.expire_now(conn.listen_key or "") is not None:
                self.listen_key_expired(conn.listen_key or "", now)
            if self._conn_fault(FaultKind.DROP, conn, wall):
                self.stats["connections_dropped"] += 1
                conn.abort()
            elif self._conn_fault(FaultKind.CLOSE_1008, conn, wall):
                self._send(conn, OutClose(1008, b"Policy violation"))
            elif self._conn_fault(FaultKind.SERVER_SHUTDOWN, conn, wall):
                self.server_shutdown(conn, now)
            elif conn.limits.expired(wall):
                self.stats["connections_expired"] += 1
                self._send(conn, OutClose(1000, b"connection lifetime exceeded"))
            elif wall - conn.last_ping_ms >= self.ping_interval_ms:
                conn.last_ping_ms = wall
                if not self._conn_fault(FaultKind.STALL, conn, wall, consume=False):
                    self._send(conn, OutPing(str(wall).encode()))

    def server_shutdown(self, conn: UsdmConnection, now: int) -> None:
        event = {"e": "serverShutdown", "E": now}
        body = {"stream": "!serverShutdown", "data": event} if conn.combined else event
        self._send(conn, OutText(_encode(body).decode()))
        self._send(conn, OutClose(1001, b"server shutdown"))
        self.stats["server_shutdowns"] += 1

    def listen_key_expired(self, key: str, now: int) -> None:
        event = {"e": "listenKeyExpired", "E": now, "listenKey": key}
        for conn in list(self.connections.values()):
            if conn.listen_key == key and not conn.closing:
                body = {"stream": key, "data": event} if conn.combined else event
                self._send(conn, OutText(_encode(body).decode()))
        self.stats["listen_keys_expired"] += 1

    # ------------------------------------------------------------ connections
    def add_connection(self, conn: UsdmConnection) -> None:
        self.connections[conn.id] = conn
        conn.start_writer()
        self.stats["connections_opened"] += 1
        self._on_connections(len(self.connections))

    def next_connection_id(self) -> int:
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        return conn_id

    async def remove_connection(self, conn: UsdmConnection) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        self._on_connections(len(self.connections))
        await conn.stop_writer()

    def subscriptions(self) -> dict[str, None]:
        union: dict[str, None] = {}
        for conn in self.connections.values():
            union.update(conn.streams)
        return union

    def drop_connections(self) -> int:
        return drop_all(self.connections, self.stats)

    async def close_all(self) -> None:
        await close_all(self.connections, self.remove_connection)
