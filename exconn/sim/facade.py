"""SimFacade: what the venue simulators' thread-safe public faces have in common.

A facade owns one server thread (a private asyncio loop with one aiohttp app) and one venue
core that only that loop may touch; every public call is marshalled onto it. Subclasses
supply the app, the periodic work, and the venue-specific parts of the fault API.
"""

import abc
import asyncio
import contextlib
import ipaddress
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from aiohttp import web
from loguru import logger

from exconn.sim.fault_registry import FaultKind, FaultRegistry
from exconn.sim.server import HttpServer, LoopThread

T = TypeVar("T")
_CALL_TIMEOUT_S = 30.0  # generous: a call waits behind at most one market step or flood chunk


class SimCore(Protocol):
    """The part of a venue core the shared facade drives."""

    paused: bool
    faults: FaultRegistry
    stats: Counter[str]

    @property
    def connections(self) -> Mapping[int, Any]: ...

    def step(self, n: int) -> None: ...

    async def close_all(self) -> None: ...


CoreT = TypeVar("CoreT", bound=SimCore)


@dataclass(frozen=True, slots=True)
class SimCredentials:
    """One API key a test client can sign with.

    `kind` is "hmac" (then `secret` is set), "ed25519" or "rsa" (then `private_key_pem` is
    the PKCS#8 private key when the simulator knows it; a key registered from a public PEM
    has none).
    """

    account: str
    api_key: str
    kind: str = "hmac"
    secret: str = ""
    private_key_pem: str | None = None


def check_loopback(host: str) -> None:
    # Published test keys and the unauthenticated /sim/ control routes stay on this host.
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address.version != 4 or not address.is_loopback:
        raise ValueError(f"the simulator binds only IPv4 loopback addresses, not {host!r}")


async def every(
    interval_s: float, action: Callable[[], None], label: str, *, catch_up: bool = False
) -> None:
    """Run `action` on a fixed grid until cancelled; a late loop skips missed slots.

    With `catch_up` a late wake-up still fires once at once before the grid resumes: the
    USD-M and Bybit tickers always did, and their cadence under load is kept as it was.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + interval_s
    while True:  # cancelled by stop()
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        try:
            action()
        except Exception:
            # A bug in one tick must not silently stop the market or the pings for good.
            logger.exception("{}: periodic action failed", label)
        now = loop.time()
        deadline += interval_s
        if deadline < now:
            deadline = now if catch_up else now + interval_s


class SimFacade(abc.ABC, Generic[CoreT]):
    """Lifecycle, call marshalling, market control, connection counting, faults, stats.

    All methods may be called from any thread except the simulator's own; state changes
    run on the server loop so they are atomic with respect to clients.
    """

    _core: CoreT
    _VENUE: str  # how faults name this venue
    # Counters reported as 0 until they first move, so tests can read them unconditionally.
    _STAT_KEYS: tuple[str, ...] = ()

    def __init__(self, host: str, port: int, thread_name: str) -> None:
        check_loopback(host)
        self._host = host
        self._port = port
        self._conn_count = 0
        self._conn_changed = threading.Condition()
        self._loop = LoopThread(thread_name)
        self._server: HttpServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._state_lock = threading.Lock()
        self._started = False
        self._stopped = False

    # ------------------------------------------------------------ venue hooks
    @abc.abstractmethod
    def _build_app(self) -> web.Application:
        """The venue's aiohttp app (built on the loop thread)."""

    @abc.abstractmethod
    def _periodic(self) -> list[Callable[[], Any]]:
        """Coroutine factories started with the server and cancelled by stop()."""

    @abc.abstractmethod
    def _fault_now(self) -> int:
        """The time faults are registered and listed at."""

    def _on_fault_added(self) -> None:
        """Apply socket faults at once, where the venue does."""

    def _on_faults_removed(self) -> None:
        """Release socket faults at once, where the venue needs it."""

    @abc.abstractmethod
    def _describe(self, conn: Any) -> dict[str, Any]:
        """One open WebSocket as `connections()` reports it."""

    @abc.abstractmethod
    def credentials(self) -> list[SimCredentials]:
        """Every test key the simulator has registered, the default account's first."""

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
        self._server = HttpServer(self._build_app(), self._host, self._port)
        await self._server.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(factory()) for factory in self._periodic()]

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
        """Base URL; clients append the venue's WebSocket path."""
        return f"ws://{self._host}:{self.port}"

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
        self._call(lambda: self._step(n))

    def _step(self, n: int) -> None:
        self._core.step(n)

    # ------------------------------------------------------------ connections
    def _connections_changed(self, count: int) -> None:
        """Given to the core, which calls it on the loop thread as sockets come and go."""
        with self._conn_changed:
            self._conn_count = count
            self._conn_changed.notify_all()

    def connection_count(self) -> int:
        with self._conn_changed:
            return self._conn_count

    def wait_for_connections(self, n: int, timeout: float) -> bool:
        with self._conn_changed:
            return self._conn_changed.wait_for(lambda: self._conn_count >= n, timeout)

    def connections(self) -> list[dict[str, Any]]:
        """Open WebSockets; each `id` is what connection-targeted faults name."""
        return self._call(lambda: [self._describe(c) for c in self._core.connections.values()])

    def stats(self) -> dict[str, int]:
        return self._call(lambda: {**dict.fromkeys(self._STAT_KEYS, 0), **self._core.stats})

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
        """Register a fault (see exconn.sim.fault_registry); returns its id."""

        def add() -> int:
            fid = self._core.faults.add(
                kind,
                venue=self._VENUE,
                connection=connection,
                symbol=symbol,
                endpoint=endpoint,
                count=count,
                duration_ms=duration_ms,
                now_ms=self._fault_now(),
                **params,
            )
            self._on_fault_added()
            return fid

        return self._call(add)

    def remove_fault(self, fault_id: int) -> bool:
        def remove() -> bool:
            removed = self._core.faults.remove(fault_id)
            self._on_faults_removed()
            return removed

        return self._call(remove)

    def clear_faults(self) -> None:
        def clear() -> None:
            self._core.faults.clear()
            self._on_faults_removed()

        self._call(clear)

    def faults(self) -> list[dict[str, Any]]:
        return self._call(lambda: self._core.faults.list(self._fault_now()))
