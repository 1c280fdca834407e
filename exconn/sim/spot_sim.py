"""BinanceSpotSim: the thread-safe public face of the simulator."""

from collections.abc import Callable, Mapping
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import Any

from aiohttp import web

from exconn.sim.auth import DEFAULT_PERMISSIONS
from exconn.sim.binance_spot import build_app
from exconn.sim.binance_spot_keys import ApiKeys
from exconn.sim.connection import Connection
from exconn.sim.core import VENUE, BookView, SpotCore, wall_ms
from exconn.sim.facade import SimCredentials, SimFacade, every
from exconn.sim.flood_plan import build_flood
from exconn.sim.symbols import DEFAULT_SYMBOLS, SimSymbol
from exconn.sim.wire import SymbolWire

_FAULT_SWEEP_S = 0.02  # how often socket faults (stall end, drop, ...) are looked at
DEFAULT_QUOTE_BALANCE = Decimal(1_000_000)
DEFAULT_BASE_VALUE = Decimal(500_000)  # each base asset is funded with about this much quote


def default_balances(symbols: list[SimSymbol]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for sym in symbols:
        out[sym.quote] = DEFAULT_QUOTE_BALANCE
        out.setdefault(sym.base, (DEFAULT_BASE_VALUE / sym.mid).quantize(sym.step_size, ROUND_DOWN))
    return out


class BinanceSpotSim(SimFacade[SpotCore]):
    """Binance spot venue on 127.0.0.1: REST, market streams and the WebSocket API.

    `accounts` test accounts are created funded (`default_balances`); their keys are in
    `sim.accounts`. `ws_messages_per_s` and `max_connection_age_s` are Binance's 5 and 24 h
    unless a test compresses them.

    All methods may be called from any thread except the simulator's own; state changes
    run on the server loop so they are atomic with respect to clients.
    """

    _VENUE = VENUE
    _STAT_KEYS = (
        "frames_sent",
        "depth_events",
        "trades",
        "rest_requests",
        "pongs_received",
        "pings_sent",
        "malformed_sent",
        "connections_opened",
        "connections_dropped",
    )

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
        super().__init__(host, port, f"binance-spot-sim:{port}")
        if depth_interval_ms <= 0 or ping_interval_s <= 0 or levels < 1:
            raise ValueError("depth_interval_ms, ping_interval_s and levels must be positive")
        self._depth_interval_s = depth_interval_ms / 1000
        self._ping_interval_s = ping_interval_s
        self._core = SpotCore(
            list(symbols or DEFAULT_SYMBOLS), seed, levels, self._connections_changed
        )
        self._core.interval_ms = depth_interval_ms
        self._core.ws_messages_per_s = ws_messages_per_s
        self._core.ws_lifetime_ms = int(max_connection_age_s * 1000)
        for _ in range(accounts):
            self._core.trading.add_account(default_balances(self.symbols))

    # ------------------------------------------------------------ facade hooks
    def _build_app(self) -> web.Application:
        return build_app(self._core)

    def _periodic(self) -> list[Callable[[], Any]]:
        core, label = self._core, "sim"
        return [
            partial(every, self._depth_interval_s, core.tick, label),
            partial(every, self._ping_interval_s, core.ping_all, label),
            partial(every, _FAULT_SWEEP_S, core.sweep_faults, label),
        ]

    def _fault_now(self) -> int:
        return wall_ms()

    def _on_fault_added(self) -> None:
        self._core.sweep_faults()

    def _on_faults_removed(self) -> None:
        # A STALL holds the writer on an Event the sweep sets again; without it a removed
        # stall would keep the socket silent until the next sweep tick.
        self._core.sweep_faults()

    def _describe(self, conn: Connection) -> dict[str, Any]:
        return {
            "id": conn.id,
            "path": conn.path,
            "streams": list(conn.streams),
            "ws_api": conn.wsapi is not None,
        }

    # ---------------------------------------------------------------- symbols
    @property
    def symbols(self) -> list[SimSymbol]:
        return list(self._core.symbols.values())

    # ----------------------------------------------------------------- market
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
    def subscriptions(self) -> list[str]:
        return self._call(self._core.subscriptions)

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

    def credentials(self) -> list[SimCredentials]:
        """Each account's HMAC, Ed25519 and RSA key, accounts in creation order."""
        out: list[SimCredentials] = []
        for k in self.accounts:
            out += [
                SimCredentials(k.account, k.hmac_key, "hmac", secret=k.hmac_secret),
                SimCredentials(
                    k.account, k.ed25519_key, "ed25519", private_key_pem=k.ed25519_private_pem
                ),
                SimCredentials(k.account, k.rsa_key, "rsa", private_key_pem=k.rsa_private_pem),
            ]
        return out

    def add_account(
        self,
        balances: Mapping[str, Decimal | str | int] | None = None,
        permissions: frozenset[str] = DEFAULT_PERMISSIONS,
    ) -> ApiKeys:
        """A new account (default: funded like the start-up ones) and its three keys."""
        amounts = (
            default_balances(self.symbols)
            if balances is None
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
                SymbolWire(sym),
                start,
                n_updates,
                levels_per_update,
                core.levels,
                sym.min_qty_steps,
                sym.max_level_steps,
                core.seed,
                wall_ms(),
            )
        except BaseException:
            self._call(lambda: core.install_flood(None))
            raise
        self._call(lambda: core.install_flood(plan))

    def flood_final_book(self, symbol: str) -> BookView:
        self._require(symbol)
        return self._call(lambda: self._core.flood_final_book(symbol))
