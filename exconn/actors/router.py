"""MarketDataRouter: the topic registry. Data does not pass through it: it hands each
exchange supervisor the subscriber list of every open topic, and the connection actor sends
events straight to the subscribers (one process hop instead of two)."""

from __future__ import annotations

import os
from typing import Any

from thespian.actors import ActorTypeDispatcher

from exconn.actors.lifeline import tie_to_parent
from exconn.messages import (
    GetStatus,
    RouterInit,
    StreamDemand,
    Subscribe,
    SubscriptionError,
    Unsubscribe,
)
from exconn.topics import SubscriptionRegistry, parse_topic, validate_subscription


class MarketDataRouter(ActorTypeDispatcher):
    def __init__(self) -> None:
        super().__init__()
        self.registry = SubscriptionRegistry()
        self.supervisors: dict[str, Any] | None = None
        self.early: list[Subscribe | Unsubscribe] = []  # arrived before RouterInit

    def receiveMsg_RouterInit(self, msg: RouterInit, sender: Any) -> None:
        first = self.supervisors is None
        if first:
            tie_to_parent()
        old = self.supervisors or {}
        self.supervisors = dict(msg.supervisors)
        self.registry.markets = dict(msg.markets)
        self.registry.accounts = tuple(msg.accounts)
        if not first:
            # A restarted supervisor knows nothing: give it every open topic of its exchange.
            renewed = {n for n, a in self.supervisors.items() if old.get(n) != a}
            self._push(
                [t for t in self.registry.open_topics() if parse_topic(t).exchange in renewed]
            )
        early, self.early = self.early, []
        for request in early:
            self.receiveMessage(request, sender)

    def receiveMsg_Subscribe(self, msg: Subscribe, sender: Any) -> None:
        if self.supervisors is None:
            self.early.append(msg)
            return
        accepted = [t for t in msg.topics if self._check(msg.subscriber, t)]
        self._push(self.registry.subscribe(msg.subscriber, accepted))

    def receiveMsg_Unsubscribe(self, msg: Unsubscribe, sender: Any) -> None:
        if self.supervisors is None:
            self.early.append(msg)
            return
        self._push(self.registry.unsubscribe(msg.subscriber, msg.topics))

    def _check(self, subscriber: Any, topic: str) -> bool:
        try:
            t = parse_topic(topic)
            if t.exchange != "*" and t.exchange not in (self.supervisors or {}):
                raise ValueError(f"exchange {t.exchange!r} is not configured")
            validate_subscription(topic)  # the registry checks it too, and would raise here
            if t.is_account and t.exchange != "*" and t.exchange not in self.registry.accounts:
                raise ValueError(
                    f"{t.exchange} has no credentials: account topics need "
                    "ExchangeConfig.credentials (Config.from_env: EXCONN_<EXCHANGE>_API_KEY)"
                )
        except ValueError as exc:
            self.send(subscriber, SubscriptionError(topic=topic, reason=str(exc)))
            return False
        return True

    def _push(self, topics: list[str]) -> None:
        for topic in topics:
            supervisor = (self.supervisors or {}).get(parse_topic(topic).exchange)
            if supervisor is not None:
                self.send(
                    supervisor,
                    StreamDemand(topic=topic, subscribers=self.registry.subscribers_of(topic)),
                )

    def receiveMsg_GetStatus(self, msg: GetStatus, sender: Any) -> None:
        self.send(sender, RouterStatus(os.getpid(), self.registry.open_topics()))


class RouterStatus:
    def __init__(self, pid: int, open_topics: list[str]) -> None:
        self.pid = pid
        self.open_topics = open_topics
