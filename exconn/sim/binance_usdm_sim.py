"""BinanceUsdmSim: the thread-safe public face of the Binance USD-M futures simulator."""

import hashlib
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import partial
from typing import Any

from aiohttp import web

from exconn.sim.auth import DEFAULT_PERMISSIONS, KeyRegistry
from exconn.sim.binance_usdm_conn import UsdmConnection
from exconn.sim.binance_usdm_core import VENUE, UsdmCore
from exconn.sim.binance_usdm_rest import CORE, KEYS, LIMITER, add_rest_routes, usdm_middleware
from exconn.sim.binance_usdm_symbols import USDM_SYMBOLS
from exconn.sim.binance_usdm_trading import LISTEN_KEY_VALIDITY_MS
from exconn.sim.binance_usdm_ws import add_ws_routes
from exconn.sim.control_http import add_control_routes
from exconn.sim.core_common import BookView, wall_ms
from exconn.sim.facade import SimCredentials, SimFacade, every
from exconn.sim.fault_registry import FaultKind
from exconn.sim.limits import USDM_LIMITS, BinanceLimiter, RateLimit
from exconn.sim.market import Book
from exconn.sim.symbols import SimSymbol

DEFAULT_WALLET = Decimal("100000")


class BinanceUsdmSim(SimFacade[UsdmCore]):
    """Binance USD-M futures on 127.0.0.1: REST, routed streams, orders, user data.

    All methods may be called from any thread; state changes run on the simulator's loop.
    `clock` (ms) drives every timestamp, expiry and limit; tests inject one to move time.
    WebSocket clients append `/public`, `/market` or `/private` to `ws_url`.
    """

    _VENUE = VENUE
    _STAT_KEYS = (
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
        super().__init__(host, port, f"binance-usdm-sim:{port}")
        if depth_interval_ms <= 0 or levels < 1:
            raise ValueError("depth_interval_ms and levels must be positive")
        self._interval_s = depth_interval_ms / 1000
        self._seed = seed
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
        self._key_accounts: dict[str, str] = {}  # api key -> the account it trades
        self._limiter = BinanceLimiter(tuple(rate_limits))
        if default_account:
            self.add_account()

    # ------------------------------------------------------------ facade hooks
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[usdm_middleware])
        app[CORE], app[KEYS], app[LIMITER] = self._core, self._keys, self._limiter
        add_rest_routes(app)
        add_ws_routes(app)
        add_control_routes(app, self._core.faults, self._core.clock)
        return app

    def _periodic(self) -> list[Callable[[], Any]]:
        # Market steps and housekeeping share one grid.
        return [partial(every, self._interval_s, self._core.tick, "sim-usdm", catch_up=True)]

    def _fault_now(self) -> int:
        # The injected clock, not wall time: tests that move time move fault windows too.
        return self._core.clock()

    # Connection faults act at the next market interval or `housekeeping()`, so adding or
    # removing one needs no sweep here.

    def _describe(self, conn: UsdmConnection) -> dict[str, Any]:
        return {
            "id": conn.id,
            "route": conn.route,
            "streams": list(conn.streams),
            "listen_key": conn.listen_key,
        }

    def _step(self, n: int) -> None:
        self._core.housekeeping()
        self._core.step(n)

    # ---------------------------------------------------------------- symbols
    @property
    def symbols(self) -> list[SimSymbol]:
        return list(self._core.symbols.values())

    # ----------------------------------------------------------------- market
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
        self._key_accounts[api_key] = api_key
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
        self._key_accounts[api_key] = account_key

    def api_keys(self) -> list[tuple[str, str]]:
        return list(self._secrets.items())

    def credentials(self) -> list[SimCredentials]:
        """HMAC keys only (the USD-M sim registers no others); an account is named by the
        api key it was opened with."""
        return [
            SimCredentials(self._key_accounts[key], key, "hmac", secret=secret)
            for key, secret in self._secrets.items()
        ]

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[dict[str, Any]]:
        return self._call(lambda: self._core.trading.open_orders(api_key, symbol))

    def listen_key_expiry(self, listen_key: str) -> int | None:
        def get() -> int | None:
            key = self._core.trading.listen_keys.get(listen_key)
            return None if key is None else key.expires_ms

        return self._call(get)

    # ------------------------------------------------------------ connections
    def connection_ids(self) -> list[int]:
        return self._call(lambda: list(self._core.connections))

    def subscriptions(self) -> list[str]:
        return self._call(lambda: list(self._core.subscriptions()))

    # ----------------------------------------------------------------- faults
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
