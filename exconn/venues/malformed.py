"""Malformed frames: counted, logged sparingly, skipped (DESIGN §6), the same on every venue.

A frame that does not decode, or a value in it that does not parse, never stops the drain it
came in. The count is published in the connection's status; the log gets the first such frame
and then one in ``LOG_EVERY``, so a venue that starts sending garbage cannot flood it.
"""

from __future__ import annotations

from typing import Any

LOG_EVERY = 1000
_SHOWN_BYTES = 120  # enough to recognise the frame, short enough for one log line


class MalformedFrames:
    """The malformed-frame count of one stream handler."""

    __slots__ = ("_log", "count")

    def __init__(self, log: Any) -> None:
        self._log = log  # a loguru logger bound to the venue and market
        self.count = 0

    def add(self, raw: bytes) -> None:
        """Count ``raw`` (``b""`` when the bad value came from a REST row or a buffer)."""
        self.count += 1
        if self.count % LOG_EVERY == 1:
            self._log.warning(
                "skipped malformed frame #{} ({} bytes): {!r}",
                self.count,
                len(raw),
                raw[:_SHOWN_BYTES],
            )
