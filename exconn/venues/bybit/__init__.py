"""Bybit V5 (spot and linear): protocol facts, wire types, parsing and book-sync rules."""
