"""Every Bybit V5 payload in the shared corpus and the reference payloads decodes with exconn's
typed decoders, and every market message among them parses to model events.

The walk covers every file under ``corpus/bybit`` and every ``reference/payloads/bybit_*``
file. A file the walk cannot handle fails the test unless ``NOT_APPLICABLE`` lists it with the
reason. Multi-record files (the recorded ``orderbook.500`` sequence) are read record by record.
Mirrors ``test_binance_decode_walk.py``.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from exconn.messages import MarketEvent
from exconn.model.enums import Exchange, Market
from exconn.model.instruments import Instrument
from exconn.model.symbols import SymbolMap, make_symbol
from exconn.venues.bybit import parse as P
from exconn.venues.bybit import wire as W

# Paths relative to corpus/bybit, or "payloads/<name>" for the reference payloads.
NOT_APPLICABLE: dict[str, str] = {
    "rest/cryptofeed__BYBIT.0": "legacy pre-V5 REST (/v2/public/symbols, ret_code): not V5",
    "ws/cryptofeed__BYBIT.ws.26.0": "legacy pre-V5 WebSocket (/realtime, orderBookL2_25): not V5",
    "rest/ccxt-static-response__bybit_subset.json": (
        "ccxt test cases wrapping ccxt-normalised bodies (retCode and time turned into "
        "strings); not what the exchange sends"
    ),
    "rest/docs__v5_rate_limit_response_headers.http": (
        "an HTTP header block (X-Bapi-Limit*), read by the REST transport, not a JSON payload"
    ),
    "rest/nautilus-py__coin_info.json": "GET /v5/asset/coin/query-info: not used by exconn",
    "rest/nautilus-rs__http_get_user_*": "user / sub-account management: not used by exconn",
    "rest/nautilus-rs__http_post_user_*": "API key management: not used by exconn",
}

QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH")


class Walk:
    """What the walk decoded and parsed, and the symbol maps it grew on the way."""

    def __init__(self) -> None:
        self.decoded: Counter[str] = Counter()
        self.parsed: Counter[str] = Counter()
        self.instruments: Counter[str] = Counter()
        self.maps = {m: SymbolMap(Exchange.BYBIT, m) for m in (Market.SPOT, Market.LINEAR)}

    def symbols(self, market: Market, *venue_symbols: str) -> SymbolMap:
        """The map for ``market``, taught ``venue_symbols`` if new. The corpus mixes symbols
        with no instruments-info for most of them, so the test splits them by a known quote
        suffix (exconn itself never does: it maps from instrument metadata)."""
        m = self.maps[market]
        for vs in venue_symbols:
            if vs not in m._from_venue:
                quote = next(q for q in QUOTES if vs.endswith(q))
                settle = quote if market is Market.LINEAR else None
                m.add(make_symbol(vs[: -len(quote)], quote, settle), vs)
        return m

    def count(self, what: Any) -> None:
        self.decoded[type(what).__name__] += 1

    def model(self, events: list[MarketEvent] | MarketEvent | None, wire: Any) -> None:
        if not isinstance(events, list):
            events = [events] if events is not None else []
        assert events, f"{type(wire).__name__} gave no model event"
        for event in events:
            assert event.ts is None or event.ts.tzinfo is not None
            self.parsed[type(event).__name__] += 1


def _market_of(rel: str) -> Market:
    return Market.SPOT if "spot" in rel.rsplit("/", 1)[-1] else Market.LINEAR


# -- WebSocket ----------------------------------------------------------------------------------


def public_message(walk: Walk, market: Market, raw: bytes, topic: str, obj: dict) -> None:
    family = topic.partition(".")[0]
    if family == "orderbook":
        msg = W.orderbook_decoder.decode(raw)
        walk.count(msg)
        walk.model(P.parse_market_message(msg, walk.symbols(market, msg.data.s)), msg)
    elif family in ("publicTrade", "trade"):  # nautilus-rs names its fixture "trade.linear.*"
        msg = W.public_trade_decoder.decode(raw)
        walk.count(msg)
        walk.model(P.parse_market_message(msg, walk.symbols(market, *(t.s for t in msg.data))), msg)
    elif family == "tickers":
        if "bidIv" in obj["data"]:
            walk.count(W.option_ticker_decoder.decode(raw))  # options: decoded, not served
            return
        msg = W.ticker_decoder.decode(raw)
        walk.count(msg)
        events = P.parse_market_message(msg, walk.symbols(market, msg.data.symbol))
        if market is Market.LINEAR:
            assert [type(e).__name__ for e in events] == ["Ticker24h", "MarkPrice"]
        walk.model(events, msg)
    elif family == "kline":
        msg = W.kline_decoder.decode(raw)
        walk.count(msg)
        walk.model(P.parse_market_message(msg, walk.symbols(market, topic.rsplit(".", 1)[1])), msg)
    elif family == "liquidation":
        walk.count(W.liquidation_decoder.decode(raw))
    elif family == "order":
        walk.count(W.order_message_decoder.decode(raw))
    elif topic.startswith("execution.fast"):
        walk.count(W.fast_execution_message_decoder.decode(raw))
    elif family == "execution":
        walk.count(W.execution_message_decoder.decode(raw))
    elif family == "position":
        walk.count(W.position_message_decoder.decode(raw))
    elif family == "wallet":
        walk.count(W.wallet_message_decoder.decode(raw))
    else:
        raise AssertionError(f"no decoder for topic {topic!r}")


def ws_json(walk: Walk, market: Market, rel: str, raw: bytes) -> None:
    """One WebSocket JSON message, routed by its keys the way a connection would."""
    obj = json.loads(raw)  # routing only; every decode below is typed
    if "topic" in obj:
        public_message(walk, market, raw, obj["topic"], obj)
    elif "header" in obj and "retCode" not in obj:
        walk.count(W.ws_trade_request_decoder.decode(raw))
    elif "reqId" in obj or ("retCode" in obj and obj.get("op", "").startswith("order.")):
        reply = W.ws_trade_response_decoder.decode(raw)
        walk.count(reply)
        if reply.op.startswith("order.") and not reply.op.endswith("-batch"):
            walk.count(msgspec.json.decode(reply.data, type=W.OrderIds))
    elif any(k in obj for k in ("success", "retCode", "ret_msg")) or obj.get("op") == "pong":
        reply = W.decode_control(raw)
        walk.count(reply)
        assert reply.ok == bool(obj.get("success", obj.get("retCode", 0) == 0))
    elif "op" in obj:
        walk.count(W.ws_request_decoder.decode(raw))
    elif "positionIdx" in obj:
        walk.count(msgspec.json.decode(raw, type=W.Position))  # a bare position item
    else:
        raise AssertionError(f"no WebSocket decoder for {rel}: {raw[:80]!r}")


def control_frames_are_classified(walk: Walk, raw: bytes) -> None:
    """Replies must never be mistaken for market data (or counted malformed)."""
    obj = json.loads(raw)
    if "topic" not in obj and ("success" in obj or obj.get("op") in ("pong", "auth")):
        assert W.frame_class(raw) == W.CONTROL


# -- REST ---------------------------------------------------------------------------------------
Parser = Callable[[Any, Market, Walk], list[Any]]


def _instruments(market: Market) -> Parser:
    def parse(wire: Any, m: Market, walk: Walk) -> list[Any]:
        found = P.parse_instruments(wire.result, market)
        walk.instruments[market.value] += len(found)
        assert all(isinstance(i, Instrument) for i in found)
        return []

    return parse


def _rest_orderbook(wire: Any, market: Market, walk: Walk) -> list[Any]:
    r = wire.result
    walk.symbols(market, r.s)
    return [P.parse_rest_orderbook(r, market.value, walk.symbols(market).from_venue(r.s))]


def _rest_trades(wire: Any, market: Market, walk: Walk) -> list[Any]:
    rows = wire.result.list
    m = walk.symbols(market, *(r.symbol for r in rows))
    return [P.parse_rest_trade(r, market.value, m.from_venue(r.symbol)) for r in rows]


def _klines(wire: Any, market: Market, walk: Walk) -> list[Any]:
    m = walk.symbols(market, wire.result.symbol)
    symbol = m.from_venue(wire.result.symbol)
    return [
        P.parse_kline_row(row, market.value, symbol, "1h", 3_600_000, wire.time)
        for row in wire.result.list
    ]


def _tickers(wire: Any, market: Market, walk: Walk) -> list[Any]:
    if wire.result.category == "option":
        return []
    out: list[Any] = []
    for row in wire.result.list:
        symbol = walk.symbols(market, row.symbol).from_venue(row.symbol)
        out.append(P.parse_rest_ticker(row, market.value, symbol, wire.time))
        bbo = P.parse_rest_bbo(row, market.value, symbol, wire.time)
        if bbo is not None:
            out.append(bbo)
        if row.markPrice:
            out.append(P.parse_rest_mark_price(row, market.value, symbol, wire.time))
    return out


# (file-name pattern, decoder, model parser or None) after instruments. First match wins.
REST: list[tuple[str, msgspec.json.Decoder[Any], Parser | None]] = [
    (r"error", W.error_decoder, None),
    (r"orderbook", W.orderbook_rest_decoder, _rest_orderbook),
    (r"trades_recent|recent_trade", W.recent_trades_decoder, _rest_trades),
    (r"klines?", W.klines_decoder, _klines),
    (r"tickers", W.tickers_decoder, _tickers),
    (r"server_time|_rest_time", W.server_time_decoder, None),
    (r"cancel_all", W.cancel_all_decoder, None),
    (r"order_(create|amend|cancel)", W.order_ids_decoder, None),
    (r"orders?_(realtime|history)|order_partially", W.orders_decoder, None),
    (r"executions|execution_list", W.executions_decoder, None),
    (r"wallet_balance", W.wallet_balance_decoder, None),
    (r"positions|position_list", W.positions_decoder, None),
    (r"fee_rate", W.fee_rates_decoder, None),
    (r"funding_history", W.funding_history_decoder, None),
    (r"account_info", W.account_info_decoder, None),
    (r"set_leverage|common_envelope", W.empty_result_decoder, None),
]


def _instruments_route(name: str) -> tuple[msgspec.json.Decoder[Any], Parser | None] | None:
    if "instrument" not in name:
        return None
    if "option" in name:
        return W.option_instruments_decoder, None
    if "inverse" in name:  # inverse contracts: decoded, never mapped (exconn serves linear)
        return W.linear_instruments_decoder, _instruments(Market.LINEAR)
    if "spot" in name:
        return W.spot_instruments_decoder, _instruments(Market.SPOT)
    return W.linear_instruments_decoder, _instruments(Market.LINEAR)


def rest_body(walk: Walk, market: Market, rel: str, raw: bytes) -> None:
    name = rel.rsplit("/", 1)[-1]
    obj = json.loads(raw)
    if isinstance(obj, list):  # a bare instruments list (nautilus copied the result only)
        items = msgspec.json.decode(raw, type=list[W.LinearInstrument])
        walk.count(items[0])
        assert P.parse_instruments(items, Market.LINEAR)
        return
    if "retCode" not in obj:  # a bare wallet-balance row
        walk.count(msgspec.json.decode(raw, type=W.WalletAccount))
        return
    route = _instruments_route(name)
    if route is None:
        route = next(((d, p) for pat, d, p in REST if re.search(pat, name, re.IGNORECASE)), None)
    if route is None:
        raise AssertionError(f"no REST decoder for {rel}")
    decoder, parser = route
    wire = decoder.decode(raw)
    walk.count(wire)
    if isinstance(wire, W.Envelope):
        walk.count(wire.result)
    if parser is not None:
        events = parser(wire, market, walk)
        if events:
            walk.model(events, wire)


def errors_catalog(walk: Walk, raw: bytes) -> None:
    """The docs' error catalog: each retCode and description as an error envelope."""
    catalog = json.loads(raw)
    walk.count(W.empty_result_decoder.decode(json.dumps(catalog["response_shape"])))
    for err in catalog["errors"]:
        if err["section"] == "HTTP Code":
            continue  # HTTP statuses, not retCodes
        body = W.error_decoder.decode(
            json.dumps({"retCode": err["code"], "retMsg": err["description"]})
        )
        assert body.retCode == err["code"] and body.retMsg == err["description"]
        walk.count(body)


def orderbook_sequence(walk: Walk, market: Market, path: Path) -> None:
    for line in path.read_bytes().splitlines():
        if line.strip():
            ws_json(walk, market, path.name, line)


def _files(corpus: Path, reference: Path) -> list[tuple[str, Path]]:
    out = [
        (str(p.relative_to(corpus / "bybit")), p)
        for p in sorted((corpus / "bybit").rglob("*"))
        if p.is_file()
    ]
    out += [(f"payloads/{p.name}", p) for p in sorted((reference / "payloads").glob("bybit_*"))]
    return out


def _not_applicable(rel: str) -> str | None:
    for pattern, reason in NOT_APPLICABLE.items():
        if fnmatch.fnmatch(rel, pattern):
            return reason
    return None


def walk_file(walk: Walk, rel: str, path: Path) -> None:
    market = _market_of(rel)
    name = path.name
    if name.endswith(".data"):
        orderbook_sequence(walk, market, path)
    elif "error_codes" in name:
        errors_catalog(walk, path.read_bytes())
    elif rel.startswith("rest/") or "_rest_" in name:
        rest_body(walk, market, rel, path.read_bytes())
    else:
        raw = path.read_bytes()
        ws_json(walk, market, rel, raw)
        control_frames_are_classified(walk, raw)


@pytest.fixture(scope="module")
def walked() -> tuple[Walk, list[str], dict[str, str]]:
    from tests.conftest import CORPUS, REFERENCE, require_shared

    corpus, reference = require_shared(CORPUS), require_shared(REFERENCE)
    walk = Walk()
    failures: list[str] = []
    skipped: dict[str, str] = {}
    for rel, path in _files(corpus, reference):
        reason = _not_applicable(rel)
        if reason:
            skipped[rel] = reason
            continue
        try:
            walk_file(walk, rel, path)
        except Exception as exc:  # collect them all: one report beats one failure per run
            failures.append(f"{rel}: {type(exc).__name__}: {exc}")
    return walk, failures, skipped


def test_every_bybit_file_decodes_or_is_listed_not_applicable(walked: Any) -> None:
    _walk, failures, skipped = walked
    assert not failures, "\n".join(failures)
    # Every not-applicable pattern still matches something: stale entries hide nothing.
    used = {p for p in NOT_APPLICABLE if any(fnmatch.fnmatch(r, p) for r in skipped)}
    assert used == set(NOT_APPLICABLE)


def test_the_walk_saw_every_kind_of_bybit_message(walked: Any) -> None:
    walk, failures, _ = walked
    assert not failures
    expected_wire = {
        "OrderbookMessage", "PublicTradeMessage", "TickerMessage", "OptionTickerMessage",
        "KlineMessage", "LiquidationMessage", "OpReply", "WsRequest", "WsTradeRequest",
        "WsTradeResponse", "OrderIds", "OrderMessage", "ExecutionMessage",
        "FastExecutionMessage", "PositionMessage", "WalletMessage", "Position", "WalletAccount",
        "Envelope", "ErrorBody", "ServerTime", "InstrumentsResult", "OrderbookResult",
        "RecentTradesResult", "KlinesResult", "TickersResult", "CancelAllResult",
        "OrdersResult", "ExecutionsResult", "WalletBalanceResult", "PositionsResult",
        "FeeRatesResult", "FundingHistoryResult", "AccountInfo", "EmptyResult",
        "LinearInstrument",
    }  # fmt: skip
    assert expected_wire <= set(walk.decoded), expected_wire - set(walk.decoded)
    assert set(walk.parsed) == {
        "BookSnapshot", "BookDelta", "Trade", "Ticker24h", "MarkPrice", "Kline", "Bbo",
    }  # fmt: skip
    # The recorded XRPUSDT sequence went through: 1 snapshot and 49 deltas.
    assert walk.parsed["BookDelta"] >= 49
    assert walk.instruments["spot"] > 0 and walk.instruments["linear"] > 0
