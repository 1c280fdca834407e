"""An engine-side test actor that keeps every bbo / aggTrade / mark event it receives (module
level so Thespian's child processes can import it)."""

from __future__ import annotations

from typing import Any

import msgspec
from thespian.actors import Actor

from exconn.messages import AggTrade, Bbo, EventBatch, MarkPrice, SubscriptionError


class GetEvents(msgspec.Struct, frozen=True):
    pass


class Events(msgspec.Struct, frozen=True):
    bbos: list[Bbo]
    aggs: list[AggTrade]
    marks: list[MarkPrice]
    others: list[str]  # type names of anything else received
    errors: list[str]


class EventRecorder(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.bbos: list[Bbo] = []
        self.aggs: list[AggTrade] = []
        self.marks: list[MarkPrice] = []
        self.others: list[str] = []
        self.errors: list[str] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, EventBatch):
            for event in message.events:
                if isinstance(event, Bbo):
                    self.bbos.append(event)
                elif isinstance(event, AggTrade):
                    self.aggs.append(event)
                elif isinstance(event, MarkPrice):
                    self.marks.append(event)
                else:
                    self.others.append(type(event).__name__)
        elif isinstance(message, SubscriptionError):
            self.errors.append(f"{message.topic}: {message.reason}")
        elif isinstance(message, GetEvents):
            self.send(
                sender,
                Events(
                    list(self.bbos),
                    list(self.aggs),
                    list(self.marks),
                    list(self.others),
                    list(self.errors),
                ),
            )
