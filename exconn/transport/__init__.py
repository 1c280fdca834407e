"""I/O: REST sessions and WebSocket connections (never imports actors)."""
