"""BybitSim: the thread-safe public face of the Bybit V5 simulator (spot and linear)."""

import asyncio
import contextlib
import hashlib
import ipaddress
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web
from loguru import logger

from exconn.sim.auth import DEFAULT_PERMISSIONS
from exconn.sim.bybit_core import VENUE, BybitCore, wall_ms
from exconn.sim.bybit_rest import CORE_KEY, build_rest_routes
from exconn.sim.bybit_ws import build_ws_routes
from exconn.sim.control_http import add_control_routes
from exconn.sim.fault_registry import FaultKind
from exconn.sim.server import HttpServer, LoopThread
from exconn.sim.symbols import DEFAULT_SYMBOLS, SimSymbol

T = TypeVar("T")
_CALL_TIMEOUT_S = 30.0
BookView = tuple[int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]
DEFAULT_SPOT_BALANCES = {
    "USDT": Decimal(1_000_000),
    "BTC": Decimal(10),
    "ETH": Decimal(100),
    "SOL": Decimal(1000),
}
DEFAULT_LINEAR_WALLET = {"USDT": Decimal(1_000_000)}


def _is_ipv4_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 4 and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BybitSim:
    """Bybit V5 (spot + linear) on 127.0.0.1: REST, public and private WebSocket.

    Methods may be called from any thread except the simulator's own; state changes run on
    the server loop so they are atomic with respect to clients. One account with an HMAC key
    exists from the start (`api_keys()[0]`).
    """

    def __init__(
        self,
        spot_symbols: list[SimSymbol] | None = None,
        linear_symbols: list[SimSymbol] | None = None,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        depth_interval_ms: int = 100,
        levels: int = 200,
    ) -> None:
        if not _is_ipv4_loopback(host):
            raise ValueError(f"the simulator binds only IPv4 loopback addresses, not {host!r}")
        if depth_interval_ms <= 0 or levels < 1:
            raise ValueError("depth_interval_ms and levels must be positive")
        self._host, self._port, self._seed = host, port, seed
        self._interval_s = depth_interval_ms / 1000
        spot = list(DEFAULT_SYMBOLS if spot_symbols is None else spot_symbols)
        linear = list(DEFAULT_SYMBOLS if linear_symbols is None else linear_symbols)
        self._core = BybitCore({"spot": spot, "linear": linear}, seed, levels)
        self._keys: list[tuple[str, str]] = []
        self._loop = LoopThread(f"bybit-sim:{port}")
        self.add_account("sim-user-1")
        self._server: HttpServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._state_lock = threading.Lock()
        self._started = self._stopped = False

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
        app = web.Application()
        app[CORE_KEY] = self._core
        app.add_routes(build_rest_routes() + build_ws_routes())
        add_control_routes(app, self._core.faults, wall_ms)
        self._server = HttpServer(app, self._host, self._port)
        await self._server.start()
        self._task = asyncio.get_running_loop().create_task(self._ticker())

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._interval_s
        while True:  # cancelled by stop()
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            try:
                self._core.tick()
            except Exception:
                logger.exception("sim bybit: tick failed")
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
        for conn in list(self._core.connections.values()):
            await conn.close(1001, b"shutdown")
            await self._core.close_connection(conn)
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
        """Base URL: clients append /v5/public/spot, /v5/public/linear or /v5/private."""
        return f"ws://{self._host}:{self.port}"

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
        self._call(lambda: self._core.step(n))

    def book(self, category: str, symbol: str, depth: int | None = None) -> BookView:
        """The last published book: with `depth`, that topic's view and `u`; without, the
        1000-level view (what REST serves)."""
        key = self._require(category, symbol)

        def read() -> BookView:
            view = self._core.feeds[key].views[depth or 1000]
            bids, asks = view.levels()
            sym = self._core.wires[key].sym

            def dec(levels: list[tuple[int, int]]) -> list[tuple[Decimal, Decimal]]:
                return [(p * sym.tick_size, q * sym.step_size) for p, q in levels]

            return view.u, dec(bids), dec(asks)

        return self._call(read)

    def last_update_id(self, category: str, symbol: str, depth: int = 1000) -> int:
        key = self._require(category, symbol)
        return self._call(lambda: self._core.feeds[key].views[depth].u)

    def _require(self, category: str, symbol: str) -> tuple[str, str]:
        if (category, symbol) not in self._core.wires:
            raise KeyError(f"unknown {category} symbol {symbol!r}")
        return category, symbol

    # --------------------------------------------------------------- accounts
    def add_account(
        self,
        account_id: str,
        api_key: str | None = None,
        secret: str | None = None,
        *,
        rsa_pem: str | bytes | None = None,
        spot_balances: dict[str, Decimal] | None = None,
        linear_wallet: dict[str, Decimal] | None = None,
        permissions: Iterable[str] = DEFAULT_PERMISSIONS,
    ) -> tuple[str, str]:
        """Open an account with one key (HMAC unless `rsa_pem`); returns (api_key, secret)."""
        digest = hashlib.sha256(f"{self._seed}/{account_id}".encode()).hexdigest()
        key = api_key or digest[:18].upper()
        secret = secret or digest[18:54]

        def add() -> None:
            self._core.add_account(
                account_id,
                DEFAULT_SPOT_BALANCES if spot_balances is None else spot_balances,
                DEFAULT_LINEAR_WALLET if linear_wallet is None else linear_wallet,
            )
            self.add_key(account_id, key, secret, rsa_pem=rsa_pem, permissions=permissions)

        self._call(add)
        return key, ("" if rsa_pem else secret)

    def add_key(
        self,
        account_id: str,
        api_key: str,
        secret: str = "",
        *,
        rsa_pem: str | bytes | None = None,
        permissions: Iterable[str] = DEFAULT_PERMISSIONS,
    ) -> None:
        keys = self._core.keys
        if rsa_pem is not None:
            self._call(
                lambda: keys.add_public_key(
                    api_key, rsa_pem, account=account_id, permissions=permissions
                )
            )
        else:
            self._call(
                lambda: keys.add_hmac(api_key, secret, account=account_id, permissions=permissions)
            )
            self._keys.append((api_key, secret))

    def api_keys(self) -> list[tuple[str, str]]:
        """HMAC (api_key, secret) pairs, the default account's first."""
        return list(self._keys)

    def wallet(self, account_id: str = "sim-user-1") -> dict[str, Any]:
        return self._call(lambda: self._core.wallet(account_id, None))

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
        """Register a fault (see exconn.sim.fault_registry); connection faults act at once."""

        def add() -> int:
            fid = self._core.faults.add(
                kind,
                venue=VENUE,
                connection=connection,
                symbol=symbol,
                endpoint=endpoint,
                count=count,
                duration_ms=duration_ms,
                now_ms=wall_ms(),
                **params,
            )
            self._core.apply_connection_faults()
            return fid

        return self._call(add)

    def remove_fault(self, fault_id: int) -> bool:
        return self._call(lambda: self._core.faults.remove(fault_id))

    def clear_faults(self) -> None:
        self._call(self._core.faults.clear)

    def faults(self) -> list[dict[str, Any]]:
        return self._call(lambda: self._core.faults.list(wall_ms()))

    def drop_connection(self, connection: int | None = None) -> int:
        return self.add_fault(FaultKind.DROP, connection=connection)

    def stall(self, connection: int | None = None, duration_ms: int = 1000) -> int:
        return self.add_fault(
            FaultKind.STALL, connection=connection, count=None, duration_ms=duration_ms
        )

    def skip_sequence(self, symbol: str, connection: int | None = None, count: int = 1) -> int:
        return self.add_fault(
            FaultKind.SKIP_SEQUENCE, symbol=symbol, connection=connection, count=count
        )

    def inject_malformed(self, connection: int | None = None, count: int = 1) -> int:
        return self.add_fault(FaultKind.MALFORMED, connection=connection, count=count)

    def expire_session(self, connection: int | None = None) -> int:
        return self.add_fault(FaultKind.EXPIRE_SESSION, connection=connection)

    def reject_auth(
        self, connection: int | None = None, endpoint: str | None = None, count: int = 1
    ) -> int:
        return self.add_fault(
            FaultKind.REJECT_AUTH, connection=connection, endpoint=endpoint, count=count
        )

    def clock_skew(self, skew_ms: int, duration_ms: int = 60_000) -> int:
        return self.add_fault(
            FaultKind.CLOCK_SKEW, count=None, duration_ms=duration_ms, skew_ms=skew_ms
        )

    def rate_limit(self, endpoint: str | None = None, count: int = 1) -> int:
        """The next `count` matching REST calls get retCode 10006 (HTTP 200)."""
        return self.add_fault(FaultKind.HTTP_429, endpoint=endpoint, count=count)

    def ip_limit(self, endpoint: str | None = None, count: int = 1) -> int:
        """The next `count` matching REST calls get HTTP 403 "access too frequent"."""
        return self.add_fault(FaultKind.HTTP_418, endpoint=endpoint, count=count)

    def error_after_accept(
        self, endpoint: str = "POST /v5/order/create", status: int = 500, count: int = 1
    ) -> int:
        return self.add_fault(
            FaultKind.ERROR_AFTER_ACCEPT, endpoint=endpoint, count=count, status=status
        )

    def timeout_after_accept(
        self, endpoint: str = "POST /v5/order/create", delay_s: float = 30.0, count: int = 1
    ) -> int:
        return self.add_fault(
            FaultKind.TIMEOUT_AFTER_ACCEPT, endpoint=endpoint, count=count, delay_s=delay_s
        )

    # ------------------------------------------------------------------ state
    def connections(self) -> list[dict[str, Any]]:
        """Open WebSockets: id (the fault target), channel, topics, authenticated account."""
        return self._call(
            lambda: [
                {
                    "id": c.id,
                    "channel": c.channel,
                    "topics": list(c.topics),
                    "account": c.authed_account,
                }
                for c in self._core.connections.values()
            ]
        )

    def stats(self) -> dict[str, int]:
        return self._call(lambda: dict(self._core.stats))
