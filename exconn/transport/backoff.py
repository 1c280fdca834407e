"""Exponential backoff with full jitter, forever (never "give up after N tries")."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        """Delay before the next attempt: uniform in [initial/2, cap], cap doubling per attempt.

        The half-initial floor keeps a flapping peer from being hammered; jitter spreads many
        clients reconnecting at once.
        """
        cap = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return self.rng.uniform(min(self.initial / 2, cap), cap)

    def reset(self) -> None:
        self.attempts = 0
