"""BinanceUsdmSim: the thread-safe public face of the Binance USD-M futures simulator."""

import asyncio
import contextlib
import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web
from loguru import logger

from exconn.sim.auth import DEFAULT_PERMISSIONS, KeyRegistry
from exconn.sim.binance_usdm_core import VENUE, UsdmCore
from exconn.sim.binance_usdm_rest import CORE, KEYS, LIMITER, add_rest_routes, usdm_middleware
from exconn.sim.binance_usdm_symbols import USDM_SYMBOLS
from exconn.sim.binance_usdm_trading import LISTEN_KEY_VALIDITY_MS
from exconn.sim.binance_usdm_ws import add_ws_routes
from exconn.sim.control_http import add_control_routes
from exconn.sim.fault_registry import FaultKind
from exconn.sim.limits import USDM_LIMITS, BinanceLimiter, RateLimit
from exconn.sim.market import Book
from exconn.sim.server import HttpServer, LoopThread
from exconn.sim.symbols import SimSymbol

T = TypeVar("T")
_CALL_TIMEOUT_S = 30.0
BookView = tuple[int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]
DEFAULT_WALLET = Decimal("100000")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class BinanceUsdmSim:
    """Binance USD-M futures on 127.0.0.1: REST, routed streams, orders, user data.

    All methods may be called from any thread; state changes run on the simulator's loop.
    `clock` (ms) drives every timestamp, expiry and limit; tests inject one to move time.
    """

    def __init__(
        self,
        symbols: list[SimSymbol] | None = None,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        depth_interval_ms: int = 100,
        levels: int = 50,
        *,
        clock: Callable[[], int] | None = None,
        listen_key_validity_ms: int = LISTEN_KEY_VALIDITY_MS,
        max_connection_ms: int = 24 * 3600 * 1000,
        ping_interval_ms: int = 180_000,
        rate_limits: Iterable[RateLimit] = USDM_LIMITS,
        default_account: bool = True,
    ) -> None:
        address = ipaddress.ip_address(host)
        if address.version != 4 or not address.is_loopback:
            raise ValueError(f"the simulator binds only IPv4 loopback addresses, not {host!r}")
        if depth_interval_ms <= 0 or levels < 1:
            raise ValueError("depth_interval_ms and levels must be positive")
        self._host, self._port = host, port
        self._interval_s = depth_interval_ms / 1000
        self._seed = seed
        self._conn_count = 0
        self._conn_changed = threading.Condition()
        self._core = UsdmCore(
            list(symbols or USDM_SYMBOLS),
            seed,
            levels,
            clock or wall_ms,
            depth_interval_ms=depth_interval_ms,
            listen_key_validity_ms=listen_key_validity_ms,
            ping_interval_ms=ping_interval_ms,
            on_connections=self._connections_changed,
        )
        self._core.max_connection_ms = max_connection_ms
        self._keys = KeyRegistry()
        self._secrets: dict[str, str] = {}
        self._limiter = BinanceLimiter(tuple(rate_limits))
        self._loop = LoopThread(f"binance-usdm-sim:{port}")
        self._server: HttpServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._state_lock = threading.Lock()
        self._started = self._stopped = False
        if default_account:
            self.add_account()

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

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[usdm_middleware])
        app[CORE], app[KEYS], app[LIMITER] = self._core, self._keys, self._limiter
        add_rest_routes(app)
        add_ws_routes(app)
        add_control_routes(app, self._core.faults, self._core.clock)
        return app

    async def _start_async(self) -> None:
        self._server = HttpServer(self._build_app(), self._host, self._port)
        await self._server.start()
        self._task = asyncio.get_running_loop().create_task(self._ticker())

    async def _ticker(self) -> None:
        """Market steps and housekeeping on a fixed grid; a late loop skips slots."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._interval_s
        while True:  # cancelled by stop()
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            try:
                self._core.tick()
            except Exception:
                logger.exception("sim-usdm: tick failed")
            deadline = max(deadline + self._interval_s, loop.time())

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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._core.close_all()
        if self._server is not None:
            await self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
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
        """Base URL; clients append `/public`, `/market` or `/private`."""
        return f"ws://{self._host}:{self.port}"

    @property
    def symbols(self) -> list[SimSymbol]:
        return list(self._core.symbols.values())

    # ----------------------------------------------------------------- market
    def _call(self, fn: Callable[[], T]) -> T:
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

        def run() -> None:
            self._core.housekeeping()
            self._core.step(n)

        self._call(run)

    def housekeeping(self) -> None:
        """Run connection faults, lifetimes, pings and listenKey expiry now."""
        self._call(self._core.housekeeping)

    def book(self, symbol: str) -> BookView:
        self._require(symbol)

        def view() -> BookView:
            book: Book = self._core.market.get(symbol).book
            snap = book.snapshot()
            fmt = self._core.fmts[symbol]
            return (
                snap.last_update_id,
                [(Decimal(fmt.price(p)), Decimal(fmt.qty(q))) for p, q in snap.bids],
                [(Decimal(fmt.price(p)), Decimal(fmt.qty(q))) for p, q in snap.asks],
            )

        return self._call(view)

    def last_update_id(self, symbol: str) -> int:
        self._require(symbol)
        return self._call(lambda: self._core.market.get(symbol).book.update_id)

    def _require(self, symbol: str) -> None:
        if symbol not in self._core.symbols:
            raise KeyError(f"unknown symbol {symbol!r}")

    # --------------------------------------------------------------- accounts
    def add_account(
        self,
        api_key: str | None = None,
        secret: str | None = None,
        *,
        wallet: Decimal = DEFAULT_WALLET,
        permissions: Iterable[str] = DEFAULT_PERMISSIONS,
        hedge_mode: bool = False,
    ) -> tuple[str, str]:
        """Open an account with one HMAC key; returns (api_key, secret)."""
        index = len(self._secrets)
        api_key = api_key or hashlib.sha256(f"{self._seed}/usdm/key/{index}".encode()).hexdigest()
        secret = secret or hashlib.sha256(f"{self._seed}/usdm/secret/{index}".encode()).hexdigest()

        def add() -> None:
            self._keys.add_hmac(api_key, secret, account=api_key, permissions=permissions)
            self._core.trading.open_account(api_key, wallet, hedge_mode)

        self._call(add)
        self._secrets[api_key] = secret
        return api_key, secret

    def add_key(
        self, account_key: str, api_key: str, secret: str, permissions: Iterable[str]
    ) -> None:
        """Another key for an existing account (e.g. read-only)."""
        self._call(
            lambda: self._keys.add_hmac(
                api_key, secret, account=account_key, permissions=permissions
            )
        )
        self._secrets[api_key] = secret

    def api_keys(self) -> list[tuple[str, str]]:
        return list(self._secrets.items())

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[dict[str, Any]]:
        return self._call(lambda: self._core.trading.open_orders(api_key, symbol))

    def listen_key_expiry(self, listen_key: str) -> int | None:
        def get() -> int | None:
            key = self._core.trading.listen_keys.get(listen_key)
            return None if key is None else key.expires_ms

        return self._call(get)

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

    def connection_ids(self) -> list[int]:
        return self._call(lambda: list(self._core.connections))

    def subscriptions(self) -> list[str]:
        return self._call(lambda: list(self._core.subscriptions()))

    def stats(self) -> dict[str, int]:
        keys = (
            "frames_sent",
            "depth_events",
            "depth_events_skipped",
            "trades",
            "rest_requests",
            "pings_sent",
            "pongs_received",
            "malformed_sent",
            "connections_opened",
            "connections_dropped",
            "user_events",
            "listen_keys_expired",
            "ws_rate_limited",
            "rate_limited",
            "auth_rejected",
        )
        return self._call(lambda: {**dict.fromkeys(keys, 0), **self._core.stats})

    # ----------------------------------------------------------------- faults
    def add_fault(
        self,
        kind: FaultKind | str,
        *,
        connection: int | None = None,
        symbol: str | None = None,
        endpoint: str | None = None,
        count: int | None = 1,
        duration_ms: int | None = None,
        **params: Any,
    ) -> int:
        """Register a fault (exconn.sim.fault_registry); returns its id. Connection faults
        act at the next market interval or `housekeeping()`."""
        return self._call(
            lambda: self._core.faults.add(
                kind,
                venue=VENUE,
                connection=connection,
                symbol=symbol,
                endpoint=endpoint,
                count=count,
                duration_ms=duration_ms,
                now_ms=self._core.clock(),
                **params,
            )
        )

    def remove_fault(self, fault_id: int) -> bool:
        return self._call(lambda: self._core.faults.remove(fault_id))

    def faults(self) -> list[dict[str, Any]]:
        return self._call(lambda: self._core.faults.list(self._core.clock()))

    def skip_sequence(self, symbol: str, connection: int | None = None) -> int:
        self._require(symbol)
        return self.add_fault(FaultKind.SKIP_SEQUENCE, symbol=symbol, connection=connection)

    def drop_connections(self) -> int:
        return self._call(self._core.drop_connections)

    def drop_connection(self, connection: int) -> int:
        fid = self.add_fault(FaultKind.DROP, connection=connection)
        self.housekeeping()
        return fid

    def stall_connection(self, connection: int | None, duration_ms: int) -> int:
        return self.add_fault(
            FaultKind.STALL, connection=connection, count=None, duration_ms=duration_ms
        )

    def inject_malformed(self, connection: int | None = None, count: int = 1) -> int:
        return self.add_fault(FaultKind.MALFORMED, connection=connection, count=count)

    def server_shutdown(self, connection: int | None = None) -> None:
        def run() -> None:
            now = self._core.now_ms()
            for conn in list(self._core.connections.values()):
                if connection is None or conn.id == connection:
                    self._core.server_shutdown(conn, now)

        self._call(run)

    def expire_listen_key(self, listen_key: str) -> bool:
        def run() -> bool:
            if self._core.trading.expire_now(listen_key) is None:
                return False
            self._core.listen_key_expired(listen_key, self._core.now_ms())
            return True

        return self._call(run)

    def clock_skew(self, skew_ms: int, duration_ms: int | None = None) -> int:
        return self.add_fault(
            FaultKind.CLOCK_SKEW,
            count=None if duration_ms else 1,
            duration_ms=duration_ms,
            skew_ms=skew_ms,
        )
