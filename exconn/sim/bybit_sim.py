"""BybitSim: the thread-safe public face of the Bybit V5 simulator (spot and linear)."""

import hashlib
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import partial
from typing import Any

from aiohttp import web

from exconn.sim.auth import DEFAULT_PERMISSIONS
from exconn.sim.bybit_book import DEPTHS
from exconn.sim.bybit_conn import BybitConnection
from exconn.sim.bybit_core import VENUE, BybitCore, wall_ms
from exconn.sim.bybit_flood import build_bybit_flood
from exconn.sim.bybit_rest import CORE_KEY, build_rest_routes
from exconn.sim.bybit_trade_ws import build_trade_routes
from exconn.sim.bybit_ws import build_ws_routes
from exconn.sim.control_http import add_control_routes
from exconn.sim.core_common import BookView
from exconn.sim.facade import SimCredentials, SimFacade, every
from exconn.sim.fault_registry import FaultKind
from exconn.sim.symbols import DEFAULT_SYMBOLS, SimSymbol

DEFAULT_SPOT_BALANCES = {
    "USDT": Decimal(1_000_000),
    "BTC": Decimal(10),
    "ETH": Decimal(100),
    "SOL": Decimal(1000),
}
DEFAULT_LINEAR_WALLET = {"USDT": Decimal(1_000_000)}


class BybitSim(SimFacade[BybitCore]):
    """Bybit V5 (spot + linear) on 127.0.0.1: REST, public and private WebSocket.

    Methods may be called from any thread except the simulator's own; state changes run on
    the server loop so they are atomic with respect to clients. One account with an HMAC key
    exists from the start (`api_keys()[0]`). WebSocket clients append /v5/public/spot,
    /v5/public/linear or /v5/private to `ws_url`.
    """

    _VENUE = VENUE

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
        super().__init__(host, port, f"bybit-sim:{port}")
        if depth_interval_ms <= 0 or levels < 1:
            raise ValueError("depth_interval_ms and levels must be positive")
        self._seed = seed
        self._interval_s = depth_interval_ms / 1000
        spot = list(DEFAULT_SYMBOLS if spot_symbols is None else spot_symbols)
        linear = list(DEFAULT_SYMBOLS if linear_symbols is None else linear_symbols)
        self._core = BybitCore(
            {"spot": spot, "linear": linear}, seed, levels, self._connections_changed
        )
        self._keys: list[tuple[str, str]] = []
        self._credentials: list[SimCredentials] = []
        self.add_account("sim-user-1")

    # ------------------------------------------------------------ facade hooks
    def _build_app(self) -> web.Application:
        app = web.Application()
        app[CORE_KEY] = self._core
        app.add_routes(build_rest_routes() + build_ws_routes() + build_trade_routes())
        add_control_routes(app, self._core.faults, wall_ms)
        return app

    def _periodic(self) -> list[Callable[[], Any]]:
        return [partial(every, self._interval_s, self._core.tick, "sim bybit", catch_up=True)]

    def _fault_now(self) -> int:
        return wall_ms()

    def _on_fault_added(self) -> None:
        self._core.apply_connection_faults()

    # Removing a fault needs no sweep: a stalled writer polls its stall window itself.

    def _describe(self, conn: BybitConnection) -> dict[str, Any]:
        return {
            "id": conn.id,
            "channel": conn.channel,
            "topics": list(conn.topics),
            "account": conn.authed_account,
        }

    # ----------------------------------------------------------------- market
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

    def public_trade_ids(self, category: str, symbol: str) -> list[str]:
        """Ids (`publicTrade` `i`) of the trades published for the symbol, oldest first: the
        most recent 20 000 (read-only; what a client that missed nothing has received)."""
        key = self._require(category, symbol)

        def read() -> list[str]:
            core = self._core
            return [core.trade_id(category, symbol, t.trade_id) for t in core.tapes[key].trades]

        return self._call(read)

    # ------------------------------------------------------------------ flood
    def prepare_flood(
        self,
        category: str,
        symbol: str,
        n_updates: int,
        levels_per_update: int = 3,
        depth: int = 200,
    ) -> None:
        """Pre-encode a flood of `orderbook.{depth}.{symbol}` deltas for the next
        connection that subscribes that topic on `category`'s channel.

        The market stays frozen from here until the flood has been written: the subscriber
        gets the ack, the snapshot of the start state, then the flood. Afterwards the book
        and that view are `flood_final_book(category, symbol)`.
        """
        key = self._require(category, symbol)
        if depth not in DEPTHS or depth == 1:
            raise ValueError(f"flood depth must be one of {[d for d in DEPTHS if d != 1]}")
        if n_updates < 1 or levels_per_update < 1:
            raise ValueError("n_updates and levels_per_update must be >= 1")
        core = self._core
        start, start_u = self._call(lambda: core.begin_flood(category, symbol, depth))
        try:
            # Encoding takes seconds; it runs here so the server keeps answering.
            plan = build_bybit_flood(
                core.wires[key],
                start,
                depth,
                start_u,
                n_updates,
                levels_per_update,
                self._seed,
                wall_ms(),
            )
        except BaseException:
            self._call(lambda: core.install_flood(None))
            raise
        self._call(lambda: core.install_flood(plan))

    def flood_final_book(self, category: str, symbol: str) -> BookView:
        """(final `u`, bids, asks) of the flooded depth view, Decimal pairs, best first."""
        key = self._require(category, symbol)
        plan = self._call(lambda: self._core.flood_plan(category, symbol))
        sym = self._core.wires[key].sym
        bids = sorted(plan.final_bids.items(), reverse=True)
        asks = sorted(plan.final_asks.items())

        def dec(levels: list[tuple[int, int]]) -> list[tuple[Decimal, Decimal]]:
            return [(p * sym.tick_size, q * sym.step_size) for p, q in levels]

        return plan.final_u, dec(bids), dec(asks)

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
            pem = rsa_pem.decode() if isinstance(rsa_pem, bytes) else rsa_pem
            # A public PEM registers the key as well; only a private one can sign.
            private = pem if "PRIVATE KEY" in pem else None
            self._credentials.append(
                SimCredentials(account_id, api_key, "rsa", private_key_pem=private)
            )
        else:
            self._call(
                lambda: keys.add_hmac(api_key, secret, account=account_id, permissions=permissions)
            )
            self._keys.append((api_key, secret))
            self._credentials.append(SimCredentials(account_id, api_key, "hmac", secret=secret))

    def api_keys(self) -> list[tuple[str, str]]:
        """HMAC (api_key, secret) pairs, the default account's first."""
        return list(self._keys)

    def credentials(self) -> list[SimCredentials]:
        """HMAC and RSA keys in the order they were added, the default account's first."""
        return list(self._credentials)

    def wallet(self, account_id: str = "sim-user-1") -> dict[str, Any]:
        return self._call(lambda: self._core.wallet(account_id, None))

    # ----------------------------------------------------------------- faults
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

    def drop_after_accept(self, endpoint: str = "POST /v5/order/create", count: int = 1) -> int:
        """Execute the next order, then close its HTTP connection without an answer."""
        return self.add_fault(FaultKind.DROP_AFTER_ACCEPT, endpoint=endpoint, count=count)

    def stream_before_ack(self, endpoint: str = "POST /v5/order/create", count: int = 1) -> int:
        """Execute the next order and write its private-stream pushes before its answer."""
        return self.add_fault(FaultKind.STREAM_BEFORE_ACK, endpoint=endpoint, count=count)

    def duplicate_fill(self, symbol: str | None = None, count: int = 1) -> int:
        """Push the next execution message (of `symbol`, e.g. "BTCUSDT") twice."""
        return self.add_fault(FaultKind.DUPLICATE_FILL, symbol=symbol, count=count)
