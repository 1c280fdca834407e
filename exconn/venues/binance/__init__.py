"""Binance Spot and USDⓈ-M: protocol facts, wire types, parsing and book-sync rules."""
