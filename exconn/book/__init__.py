"""Order books and their synchronisation (pure: no I/O)."""

from exconn.book.local import LocalBook
from exconn.book.orderbook import OrderBook
from exconn.book.sync import BookSync, SyncResult, SyncRules

__all__ = ["BookSync", "LocalBook", "OrderBook", "SyncResult", "SyncRules"]
