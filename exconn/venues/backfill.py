"""A REST read a stream handler asks its connection for, the same shape on every venue.

Trade histories are delivered without gaps or duplicates across socket changes; when a venue's
trade tape holds live trades behind a possible gap, the handler names the read that fills it
(``StreamHandler.backfills``) and the connection, which does the I/O, hands the decoded answer
back (``StreamHandler.on_backfill``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec


@dataclass(frozen=True)
class Backfill:
    """Fetch ``path`` with ``params``, decode with ``decoder`` and hand the result to
    ``StreamHandler.on_backfill(kind, venue_symbol, rows, out)``."""

    kind: str  # topic kind: "trades" or "aggtrades"
    venue_symbol: str
    path: str
    params: dict[str, str]
    decoder: msgspec.json.Decoder[Any]
