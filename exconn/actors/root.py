"""Root: spawned by ``exconn.start``; creates the router and one supervisor per exchange and
forwards engine commands to them."""

from __future__ import annotations

from typing import Any

from thespian.actors import ActorTypeDispatcher

from exconn.actors.router import MarketDataRouter
from exconn.actors.supervisor import ExchangeSupervisor
from exconn.logs import configure
from exconn.messages import (
    GetStatus,
    RootStart,
    RootStarted,
    RouterInit,
    Subscribe,
    SupervisorInit,
    Unsubscribe,
)


class TreeStatus:
    """Reply to GetStatus sent to the root (plain class: holds actor addresses)."""

    def __init__(self, router: Any, supervisors: dict[str, Any]) -> None:
        self.router = router
        self.supervisors = supervisors


class Root(ActorTypeDispatcher):
    def __init__(self) -> None:
        super().__init__()
        self.router: Any = None
        self.supervisors: dict[str, Any] = {}

    def receiveMsg_RootStart(self, msg: RootStart, sender: Any) -> None:
        config = msg.config
        if self.router is None:
            configure(config.log_level)
            self.router = self.createActor(MarketDataRouter)
            for ex in config.exchanges:
                sup = self.createActor(ExchangeSupervisor)
                self.send(
                    sup, SupervisorInit(exchange=ex.name, config=ex, log_level=config.log_level)
                )
                self.supervisors[ex.name] = sup
            self.send(self.router, RouterInit(supervisors=dict(self.supervisors)))
        self.send(sender, RootStarted())

    def receiveMsg_Subscribe(self, msg: Subscribe, sender: Any) -> None:
        self.send(self.router, msg)

    def receiveMsg_Unsubscribe(self, msg: Unsubscribe, sender: Any) -> None:
        self.send(self.router, msg)

    def receiveMsg_GetStatus(self, msg: GetStatus, sender: Any) -> None:
        self.send(sender, TreeStatus(self.router, dict(self.supervisors)))
