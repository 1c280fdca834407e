"""Wiring messages between the exchange supervisor and its market-data connections that
carry the WebSocket lifecycle settings (kept here, beside the actors, until
``exconn.messages.ConnectionInit`` grows the fields)."""

from __future__ import annotations

import msgspec

from exconn.config import WsSettings
from exconn.messages import ConnectionInit


class ConnectionSetup(msgspec.Struct, frozen=True):
    """Supervisor -> connection: ``init`` plus the lifecycle settings. ``init.ws_url`` is the
    base URL of this connection's route (USD-M ``/public`` or ``/market``)."""

    init: ConnectionInit
    settings: WsSettings = msgspec.field(default_factory=WsSettings)
