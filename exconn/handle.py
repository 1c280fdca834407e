"""``exconn.start()`` and the handle it returns, for code that is not itself an actor.

Inside an engine's own actors, send the same messages to ``handle.root`` instead
(``self.send(root, Subscribe(self.myAddress, ("book.binance.spot.BTC/USDT",)))``).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from thespian.actors import ActorSystem

from exconn.actors.root import Root, TreeStatus
from exconn.actors.supervisor import SupervisorStatus
from exconn.config import SEAL_KEY_ENV, Config, new_seal_key, seal_credentials
from exconn.errors import ConfigError, ExchangeDown
from exconn.logs import THESPIAN_LOG_DEFS, configure
from exconn.messages import (
    ConnectionInfo,
    GetOrderEntry,
    GetStatus,
    OrderEntry,
    RootStart,
    RootStarted,
    Subscribe,
    SystemStatus,
    Unsubscribe,
)

SYSTEM_BASE = "multiprocTCPBase"
# Thespian acknowledges every message between processes; these raise throughput about 4x
# (measured, DESIGN.md §3). They must be set before the actor system starts.
TRANSMIT_SETTINGS = {
    "THESPIAN_MAX_QUEUED_TRANSMITS": "50",
    "THESPIAN_QUEUED_TRANSMIT_UNBLOCK_THRESHOLD": "30",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Exconn:
    """A running exconn: the actor system and its root."""

    def __init__(
        self, system: ActorSystem, root: Any, admin_port: int, budget_dir: str | None = None
    ) -> None:
        self.system = system
        self.root = root
        self.admin_port = admin_port
        # The REST budget directory this handle created (removed at shutdown), if any.
        self.budget_dir = budget_dir
        self._closed = False

    def create_actor(self, actor_class: Any, **kwargs: Any) -> Any:
        """Create an engine actor in exconn's actor system (so it can be subscribed)."""
        return self.system.createActor(actor_class, **kwargs)

    def subscribe(self, actor: Any, *topics: str) -> None:
        self.system.tell(self.root, Subscribe(subscriber=actor, topics=tuple(topics)))

    def unsubscribe(self, actor: Any, *topics: str) -> None:
        self.system.tell(self.root, Unsubscribe(subscriber=actor, topics=tuple(topics)))

    def tell(self, message: Any) -> None:
        self.system.tell(self.root, message)

    def ask(self, message: Any, timeout: float = 10.0) -> Any:
        return self.system.ask(self.root, message, timeout)

    def order_entry(self, exchange: str, timeout: float = 5.0) -> Any:
        """The address of ``exchange``'s OrderCommand (None while it is not running): order
        commands asked of it directly skip the root's hop. It changes when the OrderCommand
        restarts; an engine actor keeps it current with ``GetOrderEntry`` (see there)."""
        reply = self.system.ask(self.root, GetOrderEntry(exchange, watch=False), timeout)
        if not isinstance(reply, OrderEntry):
            raise ExchangeDown("exconn root did not answer where the order entry is")
        return reply.address

    def status(self, timeout: float = 5.0) -> SystemStatus:
        """Ask every supervisor and connection actor how it is (blocking, bounded per hop)."""
        tree = self.system.ask(self.root, GetStatus(), timeout)
        if not isinstance(tree, TreeStatus):
            raise ExchangeDown("exconn root did not answer the status request")
        infos: list[ConnectionInfo] = []
        restarts = 0
        for supervisor in tree.supervisors.values():
            reply = self.system.ask(supervisor, GetStatus(), timeout)
            if not isinstance(reply, SupervisorStatus):
                continue  # no answer in time (a supervisor being restarted)
            restarts += reply.restarts
            for conn in reply.connections:
                info = self.system.ask(conn, GetStatus(), timeout)
                if isinstance(info, ConnectionInfo):
                    infos.append(info)
        return SystemStatus(connections=tuple(infos), restarts=restarts)

    def shutdown(self) -> None:
        """Stop every actor (sockets closed) and the actor system's processes. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.system.shutdown()
        finally:
            _remove_budget_dir(self.budget_dir)

    def __enter__(self) -> Exconn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def make_budget_dir() -> str:
    """A private directory for the system's shared REST budgets: on /dev/shm (memory) where
    there is one, else the temporary directory."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="exconn-rest-budget-", dir=base)


def _remove_budget_dir(path: str | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def _with_budget_dir(config: Config) -> tuple[Config, str | None]:
    """``config`` with every exchange's ``rest_budget_dir`` set; the directory created for
    those that had none (None when all had one)."""
    if all(ex.rest_budget_dir is not None for ex in config.exchanges):
        return config, None
    created = make_budget_dir()
    exchanges = tuple(
        ex
        if ex.rest_budget_dir is not None
        else msgspec.structs.replace(ex, rest_budget_dir=created)
        for ex in config.exchanges
    )
    return msgspec.structs.replace(config, exchanges=exchanges), created


def start(config: Config) -> Exconn:
    """Spawn the actor system and the exchange tree; returns once the root is up.

    Every process of the system draws REST requests from one budget per host (a directory
    created here and removed by ``shutdown``, unless the config names one)."""
    if not config.exchanges:
        raise ConfigError("no exchange configured")
    configure(config.log_level)
    for key, value in TRANSMIT_SETTINGS.items():
        os.environ.setdefault(key, value)
    # Thespian unpickles whatever reaches its ports: bind it to a private address.
    os.environ["THESPIAN_BASE_IPADDR"] = config.bind_address
    port = config.admin_port or free_port(config.bind_address)
    config, budget_dir = _with_budget_dir(config)
    if any(ex.credentials is not None for ex in config.exchanges):
        # Credentials never pickle: seal them with a key of this system's own, which its
        # processes inherit through the environment (never through a message).
        seal_key = new_seal_key()
        os.environ[SEAL_KEY_ENV] = seal_key.decode()
        config = seal_credentials(config, seal_key)
    system: ActorSystem | None = None
    try:
        system = ActorSystem(
            SYSTEM_BASE,
            capabilities={"Admin Port": port},
            logDefs=THESPIAN_LOG_DEFS,
            transientUnique=True,
        )
        root = system.createActor(Root)
        reply = system.ask(root, RootStart(config=config), config.start_timeout)
        if not isinstance(reply, RootStarted):
            raise ExchangeDown(f"exconn root did not start within {config.start_timeout} s")
    except BaseException:
        try:
            if system is not None:
                system.shutdown()
        finally:
            _remove_budget_dir(budget_dir)
        raise
    return Exconn(system, root, port, budget_dir)
