"""Generation-tagged timers: Thespian cannot cancel a ``wakeupAfter``, so each purpose keeps a
generation number and a wakeup carrying an older one is ignored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from exconn.messages import Wakeup


class Timers:
    def __init__(self, actor: Any) -> None:
        self._actor = actor
        self._generation: dict[str, int] = {}
        self._pending: set[str] = set()

    def start(self, purpose: str, seconds: float) -> None:
        """(Re)arm ``purpose``; any earlier pending wakeup for it becomes stale."""
        gen = self._generation.get(purpose, 0) + 1
        self._generation[purpose] = gen
        self._pending.add(purpose)
        self._actor.wakeupAfter(timedelta(seconds=max(0.0, seconds)), Wakeup(purpose, gen))

    def ensure(self, purpose: str, seconds: float) -> None:
        """Arm ``purpose`` unless it is already pending (keeps the number of timers small)."""
        if purpose not in self._pending:
            self.start(purpose, seconds)

    def cancel(self, purpose: str) -> None:
        self._generation[purpose] = self._generation.get(purpose, 0) + 1
        self._pending.discard(purpose)

    def fire(self, payload: Any) -> str | None:
        """The purpose of a current wakeup, or None for a stale or foreign one."""
        if not isinstance(payload, Wakeup):
            return None
        if self._generation.get(payload.purpose) != payload.generation:
            return None
        self._pending.discard(payload.purpose)
        return payload.purpose
