"""BinanceSpotSim: the thread-safe public face of the simulator."""

import asyncio
import contextlib
import ipaddress
import threading
from collections.abc import Callable, Mapping
from decimal import ROUND_DOWN, Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

from loguru import logger

from exconn.sim.auth import DEFAULT_PERMISSIONS
from exconn.sim.binance_spot import build_app
from exconn.sim.binance_spot_keys import ApiKeys
from exconn.sim.core import VENUE, BookView, SpotCore, wall_ms
from exconn.sim.fault_registry import FaultKind
from exconn.sim.flood_plan import build_flood
from exconn.sim.server import HttpServer, LoopThread
from exconn.sim.symbols import DEFAULT_SYMBOLS, SimSymbol
from exconn.sim.wire import SymbolWire

T = TypeVar("T")
_CALL_TIMEOUT_S = 30.0  # generous: a call waits behind at most one market step or flood chunk
_FAULT_SWEEP_S = 0.02  # how often socket faults (stall end, drop, ...) are looked at
DEFAULT_QUOTE_BALANCE = Decimal(1_000_000)
DEFAULT_BASE_VALUE = Decimal(500_000)  # each base asset is funded with about this much quote


def default_balances(symbols: list[SimSymbol]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for sym in symbols:
        out[sym.quote] = DEFAULT_QUOTE_BALANCE
        out.setdefault(
            sym.base, (DEFAULT_BASE_VALUE / sym.mid).quantize(sym.step_size, ROUND_DOWN)
        )
    return out


def _is_ipv4_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback


class BinanceSpotSim:
    """Binance spot venue on 127.0.0.1: REST, market streams and the WebSocket API.

    `accounts` test accounts are created funded (`default_balances`); their keys are in
    `sim.accounts`. `ws_messages_per_s` and `max_connection_age_s` are Binance's 5 and 24 h
    unless a test compresses them.

    All methods may be called from any thread except the simulator's own; state changes
    run on the server loop so they are atomic with respect to clients.
    """

    def __init__(
        self,
        symbols: list[SimSymbol] | None = None,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        depth_interval_ms: int = 100,
        levels: int = 50,
        ping_interval_s: float = 20.0,
        accounts: int = 2,
        ws_messages_per_s: int = 5,
        max_connection_age_s: float = 24 * 3600.0,
    ) -> None:
        if not _is_ipv4_loopback(host):
            raise ValueError(f"the simulator binds only IPv4 loopback addresses, not {host!r}")
        if depth_interval_ms <= 0 or ping_interval_s <= 0 or levels < 1:
            raise ValueError("depth_interval_ms, ping_interval_s and levels must be positive")
        self._host = host
        self._port = port
        self._depth_interval_s = depth_interval_ms / 1000
        self._ping_interval_s = ping_interval_s
        self._conn_count = 0
        self._conn_changed = threading.Condition()
        self._core = SpotCore(
            list(symbols or DEFAULT_SYMBOLS), seed, levels, self._connections_changed
        )
        self._core.interval_ms = depth_interval_ms
        self._core.ws_messages_per_s = ws_messages_per_s
        self._core.ws_lifetime_ms = int(max_connection_age_s * 1000)
        for _ in range(accounts):
            self._core.trading.add_account(default_balances(self.symbols))
        self._loop = LoopThread(f"binance-spot-sim:{port}")
        self._server: HttpServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._state_lock = threading.Lock()
        self._started = False
        self._stopped = False

    # -------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        with self._state_lock:
            if self._started:
                raise RuntimeError("simulator already started")
            self._started = True
        self._loop.start()
        try:
            self._loop.run(self._start_async, _CALL_TIMEOUT_S)
        except BaseException:
            self._loop.stop()
            raise
        return self

    async def _start_async(self) -> None:
        self._server = HttpServer(build_app(self._core), self._host, self._port)
        await self._server.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every(self._depth_interval_s, self._core.tick)),
            loop.create_task(self._every(self._ping_interval_s, self._core.ping_all)),
            loop.create_task(self._every(_FAULT_SWEEP_S, self._core.sweep_faults)),
        ]

    @staticmethod
    async def _every(interval_s: float, action: Callable[[], None]) -> None:
        """Run `action` on a fixed grid; a late loop skips missed slots instead of bursting."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + interval_s
        while True:  # cancelled by stop()
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            try:
                action()
            except Exception:
                # A bug in one tick must not silently stop the market or the pings for good.
                logger.exception("sim: periodic action failed")
            now = loop.time()
            deadline += interval_s
            if deadline < now:
                deadline = now + interval_s

    def stop(self) -> None:
        with self._state_lock:
            if not self._started or self._stopped:
                self._stopped = True
                return
            self._stopped = True
        try:
            if self._loop.running:
                self._loop.run(self._stop_async, _CALL_TIMEOUT_S)
        finally:
            self._loop.stop()

    async def _stop_async(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._core.close_all()
        if self._server is not None:
            await self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------- urls
    @property
    def port(self) -> int:
        if self._server is None or not self._server.port:
            raise RuntimeError("simulator not started")
        return self._server.port

    @property
    def rest_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host}:{self.port}"

    @property
    def symbols(self) -> list[SimSymbol]:
        return list(self._core.symbols.values())

    # ----------------------------------------------------------------- market
    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` where the core lives: on the loop while it runs, inline otherwise."""
        if self._loop.running and not self._loop.in_loop_thread():
            return self._loop.call(fn, _CALL_TIMEOUT_S)
        return fn()

    def pause(self) -> None:
        self._call(lambda: setattr(self._core, "paused", True))

    def resume(self) -> None:
        self._call(lambda: setattr(self._core, "paused", False))

    def step(self, n: int = 1) -> None:
        """Advance n intervals now (also while paused); events are queued before return."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self._call(lambda: self._core.step(n))

    def book(self, symbol: str) -> BookView:
        self._require(symbol)
        return self._call(lambda: self._core.book(symbol))

    def last_update_id(self, symbol: str) -> int:
        self._require(symbol)
        return self._call(lambda: self._core.market.get(symbol).book.update_id)

    def _require(self, symbol: str) -> None:
        if symbol not in self._core.symbols:
            raise KeyError(f"unknown symbol {symbol!r}")

    # ------------------------------------------------------------ connections
    def _connections_changed(self, count: int) -> None:
        with self._conn_changed:
            self._conn_count = count
            self._conn_changed.notify_all()

    def connection_count(self) -> int:
        with self._conn_changed:
            return self._conn_count

    def wait_for_connections(self, n: int, timeout: float) -> bool:
        with self._conn_changed:
            return self._conn_changed.wait_for(lambda: self._conn_count >= n, timeout)

    def subscriptions(self) -> list[str]:
        return self._call(self._core.subscriptions)

    def stats(self) -> dict[str, int]:
        keys = (
            "frames_sent", "depth_events", "trades", "rest_requests", "pongs_received",
            "pings_sent", "malformed_sent", "connections_opened", "connections_dropped",
        )
        return self._call(lambda: {**dict.fromkeys(keys, 0), **self._core.stats})

    # ----------------------------------------------------------------- faults
    def inject_malformed(self, count: int = 1) -> None:
        """The next `count` events to each current connection are preceded by garbage."""
        if count < 0:
            raise ValueError("count must be >= 0")
        self._call(lambda: self._core.inject_malformed(count))

    def skip_sequence(self, symbol: str) -> None:
        self._require(symbol)
        self._call(lambda: self._core.skip_sequence(symbol))

    def drop_connections(self) -> None:
        self._call(self._core.drop_connections)

    # ------------------------------------------------------- accounts and keys
    @property
    def accounts(self) -> list[ApiKeys]:
        return self._call(lambda: list(self._core.trading.accounts))

    def api_keys(self, index: int = 0) -> ApiKeys:
        return self.accounts[index]

    def add_account(
        self, balances: Mapping[str, Decimal | str | int] | None = None,
        permissions: frozenset[str] = DEFAULT_PERMISSIONS,
    ) -> ApiKeys:
        """A new account (default: funded like the start-up ones) and its three keys."""
        amounts = (
            default_balances(self.symbols) if balances is None
            else {a: Decimal(str(v)) for a, v in balances.items()}
        )
        return self._call(lambda: self._core.trading.add_account(amounts, permissions))

    def balances(self, account: str | ApiKeys) -> dict[str, tuple[Decimal, Decimal]]:
        """asset -> (free, locked)."""
        name = account.account if isinstance(account, ApiKeys) else account
        return self._call(lambda: self._core.trading.balances(name))

    def deposit(self, account: str | ApiKeys, asset: str, amount: Decimal | str) -> None:
        """Move funds in (or out, negative): sends balanceUpdate + outboundAccountPosition."""
        name = account.account if isinstance(account, ApiKeys) else account
        self._call(lambda: self._core.trading.deposit(name, asset, Decimal(str(amount))))

    # ----------------------------------------------------------- fault registry
    def add_fault(
        self, kind: FaultKind | str, *, connection: int | None = None,
        symbol: str | None = None, endpoint: str | None = None, count: int | None = 1,
        duration_ms: int | None = None, **params: Any,
    ) -> int:
        """Register a fault (see docs/simulator.md); socket faults act at once."""
        core = self._core

        def add() -> int:
            fid = core.faults.add(
                kind, venue=VENUE, connection=connection, symbol=symbol, endpoint=endpoint,
                count=count, duration_ms=duration_ms, now_ms=wall_ms(), **params,
            )
            core.sweep_faults()
            return fid

        return self._call(add)

    def remove_fault(self, fault_id: int) -> bool:
        def remove() -> bool:
            removed = self._core.faults.remove(fault_id)
            self._core.sweep_faults()
            return removed

        return self._call(remove)

    def clear_faults(self) -> None:
        def clear() -> None:
            self._core.faults.clear()
            self._core.sweep_faults()

        self._call(clear)

    def faults(self) -> list[dict[str, Any]]:
        return self._call(lambda: self._core.faults.list(wall_ms()))

    def connections(self) -> list[dict[str, Any]]:
        """Open WebSockets: id (for connection-targeted faults), path, streams."""
        return self._call(lambda: [
            {"id": c.id, "path": c.path, "streams": list(c.streams), "ws_api": c.wsapi is not None}
            for c in self._core.connections.values()
        ])

    # ------------------------------------------------------------------ flood
    def prepare_flood(self, symbol: str, n_updates: int, levels_per_update: int = 3) -> None:
        """Pre-encode a flood for the next subscriber of `<symbol>@depth[@100ms]`.

        The market stays frozen from here until the flood has been written, so REST keeps
        serving the start snapshot; afterwards the book is `flood_final_book(symbol)`.
        """
        self._require(symbol)
        if n_updates < 1 or levels_per_update < 1:
            raise ValueError("n_updates and levels_per_update must be >= 1")
        core = self._core
        start = self._call(lambda: core.begin_flood(symbol))
        sym = core.symbols[symbol]
        try:
            # Encoding can take seconds; it runs here so the server keeps answering.
            plan = build_flood(
                SymbolWire(sym), start, n_updates, levels_per_update, core.levels,
                sym.min_qty_steps, sym.max_level_steps, core.seed, wall_ms(),
            )
        except BaseException:
            self._call(lambda: core.install_flood(None))
            raise
        self._call(lambda: core.install_flood(plan))

    def flood_final_book(self, symbol: str) -> BookView:
        self._require(symbol)
        return self._call(lambda: self._core.flood_final_book(symbol))
