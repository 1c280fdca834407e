"""Every Binance payload in the shared corpus and the reference payloads decodes with exconn's
typed decoders, and every market event among them parses to a model event.

The walk covers every file under ``corpus/binance`` and every ``reference/payloads/binance_*``
file. A file the walk cannot handle fails the test unless ``NOT_APPLICABLE`` lists it with the
reason. Multi-record formats (hftbacktest, cryptofeed, the USD-M history CSV) are read record by
record (``tests/corpus/recordings.py``; formats in ../shared/corpus/MANIFEST.md).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from exconn.messages import BookTop, MarketEvent
from exconn.model.enums import Exchange, Market
from exconn.model.symbols import SymbolMap, make_symbol
from exconn.venues.binance import parse as P
from exconn.venues.binance import wire as W
from tests.corpus.recordings import cryptofeed_records, hftbacktest_lines, nautilus_depth_csv

# Paths relative to corpus/binance, or "payloads/<name>" for the reference payloads.
NOT_APPLICABLE: dict[str, str] = {
    "spot/ws/sbe_mainnet/*.sbe": "SBE binary frames: exconn speaks the JSON protocol only",
    "spot/ws/sbe_mainnet/*.json": "capture metadata of the SBE fixtures, not a Binance payload",
    "spot/rest/ccxt-static-response__binance_subset.json": (
        "ccxt test cases wrapping ccxt-normalised bodies (integers turned into strings); not "
        "what the exchange sends"
    ),
    "*wallet_commission_rate*": "GET /fapi/v1/commissionRate: endpoint not used by exconn",
    "*wallet_trading_fee*": "GET /sapi/v1/asset/tradeFee: endpoint not used by exconn",
    "*long_short*": "futures/data long/short ratio statistics: not used by exconn",
    "*taker_long_short_ratio*": "futures/data taker ratio statistics: not used by exconn",
    "*open_interest_historical*": "futures/data open interest statistics: not used by exconn",
    "*market_index_info*": "GET /fapi/v1/indexInfo (composite indices): not used by exconn",
    "*market_asset_index*": "GET /fapi/v1/assetIndex (multi-assets mode): not used by exconn",
    "*blvt_nav_kline*": "BLVT NAV klines (leveraged tokens, retired): not used by exconn",
    "*account_symbol_config*": "GET /fapi/v1/symbolConfig: not used by exconn",
    "*open_algo_orders*": "GET /fapi/v1/openAlgoOrders: algo order REST not used by exconn yet",
    "payloads/binance_spot_rest_cancelReplace_*": "cancelReplace: not used by exconn's order path",
    "payloads/binance_spot_rest_amendKeepPriority.json": "order amend: not used by exconn yet",
    "payloads/binance_spot_rest_order_test_commission.json": (
        "POST /api/v3/order/test with computeCommissionRates: not used by exconn"
    ),
}

SPOT_USER_TAGS = {
    "executionReport",
    "outboundAccountPosition",
    "balanceUpdate",
    "listStatus",
    "eventStreamTerminated",
    "externalLockUpdate",
}
USDM_USER_TAGS = {"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "TRADE_LITE", "ALGO_UPDATE"}
QUOTES = ("USDT", "BUSD", "USDC", "USD", "BTC", "ETH", "BNB", "EUR")

combined_spot_user = msgspec.json.Decoder(W.Combined[W.SpotUserEvent])
combined_usdm_user = msgspec.json.Decoder(W.Combined[W.UsdmUserEvent])
ws_request_decoder = msgspec.json.Decoder(W.WsRequest)


class Walk:
    """What the walk decoded and parsed, and the symbol maps it grew on the way."""

    def __init__(self) -> None:
        self.decoded: Counter[str] = Counter()
        self.parsed: Counter[str] = Counter()
        self.maps = {m: SymbolMap(Exchange.BINANCE, m) for m in (Market.SPOT, Market.LINEAR)}

    def symbols(self, market: Market, venue_symbol: str | None = None) -> SymbolMap:
        """The map for ``market``, taught ``venue_symbol`` if new. The corpus mixes symbols
        from many files with no exchangeInfo for most of them, so the test splits them by a
        known quote suffix (exconn itself never does: it maps from instrument metadata)."""
        m = self.maps[market]
        if venue_symbol and venue_symbol not in m._from_venue:
            quote = next(q for q in QUOTES if venue_symbol.endswith(q))
            base = venue_symbol[: -len(quote)]
            settle = quote if market is Market.LINEAR else None
            m.add(make_symbol(base, quote, settle), venue_symbol)
        return m

    def count(self, what: Any) -> None:
        self.decoded[type(what).__name__] += 1

    def model(self, event: MarketEvent | None, wire: Any) -> None:
        assert event is not None, f"{type(wire).__name__} gave no model event"
        self.parsed[type(event).__name__] += 1


def _symbol_of(wire: Any) -> str | None:
    return getattr(wire, "s", None)


def market_event(walk: Walk, market: Market, wire: Any, stream: str | None = None) -> None:
    """A decoded market stream event: count it and, if it has a model, parse it."""
    walk.count(wire)
    venue = W.stream_kind(stream) if stream else None
    if isinstance(wire, W.PartialDepth):
        assert stream is not None
        walk.symbols(market, P.venue_symbol_of_stream(stream))
    elif _symbol_of(wire):
        walk.symbols(market, _symbol_of(wire))
    event = P.parse_market_event(wire, walk.symbols(market), stream)
    if isinstance(wire, W.MiniTicker24hrEvent | W.ForceOrderEvent | W.ServerShutdown):
        assert event is None  # decoded, but exconn has no model event for it
        return
    walk.model(event, wire)
    if venue == "partialDepth" or isinstance(wire, W.PartialDepth):
        assert isinstance(event, BookTop)  # a top-N view, never a whole-book snapshot


def ws_json(walk: Walk, market: Market, raw: bytes) -> None:
    """One WebSocket JSON message, routed the way a connection routes it: by envelope, then by
    the event's ``e`` tag (or, for the untagged spot events, by stream name / shape)."""
    obj = json.loads(raw)  # routing only; every decode below is typed
    if "subscriptionId" in obj:
        walk.count(W.user_data_event_decoder.decode(raw).event)
    elif "stream" in obj:
        tag = obj["data"].get("e")
        if tag in SPOT_USER_TAGS:
            walk.count(combined_spot_user.decode(raw).data)
        elif tag in USDM_USER_TAGS:
            walk.count(combined_usdm_user.decode(raw).data)
        else:
            stream, event = W.decode_combined(raw)
            market_event(walk, market, event, stream)
    elif "method" in obj:
        walk.count(ws_request_decoder.decode(raw))
    elif "status" in obj:
        reply = W.ws_api_response_decoder.decode(raw)
        walk.count(reply)
        assert bool(reply.result) != (reply.error is not None)
        if reply.result:
            walk.count(msgspec.json.decode(reply.result, type=_ws_api_result_type(obj)))
    elif "id" in obj and ("result" in obj or "code" in obj):
        walk.count(W.control_decoder.decode(raw))
    elif obj.get("e") in SPOT_USER_TAGS:
        walk.count(W.spot_user_event_decoder.decode(raw))
    elif obj.get("e") in USDM_USER_TAGS or obj.get("e") == "listenKeyExpired":
        walk.count(W.usdm_user_event_decoder.decode(raw))
    elif obj.get("e") == "bookTicker" or ("u" in obj and "b" in obj and "e" not in obj):
        market_event(walk, market, W.book_ticker_decoder.decode(raw))
    elif "e" in obj:
        market_event(walk, market, W.market_event_decoder.decode(raw))
    elif "lastUpdateId" in obj and "E" not in obj:
        market_event(walk, market, W.partial_depth_decoder.decode(raw), "bnbbtc@depth5")
    else:
        raise AssertionError(f"no WebSocket decoder for {raw[:80]!r}")


def _ws_api_result_type(obj: dict) -> Any:
    result = obj["result"]
    if isinstance(result, list):
        return list[W.SpotOrderResult]
    if "orderId" in result:
        return W.SpotOrderFull  # FULL is a superset of RESULT and ACK
    if "subscriptionId" in result:
        return W.SubscriptionResult
    if "connectedSince" in result:
        return W.SessionStatus
    return W.ServerTime


# REST bodies: (file-name pattern, decoder, model parser or None). First match wins.
def _one(parser: Callable[..., Any]) -> Callable[[Any, str, str], list[Any]]:
    return lambda wire, market, symbol: [parser(wire, market, symbol)]


def _each(parser: Callable[..., Any]) -> Callable[[Any, str, str], list[Any]]:
    return lambda wire, market, symbol: [parser(w, market, symbol) for w in wire]


REST: list[tuple[str, msgspec.json.Decoder | None, Callable[[Any, str, str], list[Any]] | None]] = [
    (r"exchange_?info", W.exchange_info_decoder, None),
    (r"depth", W.depth_snapshot_decoder, _one(P.parse_depth_snapshot)),
    (r"agg_?trades", W.rest_agg_trades_decoder, _each(P.parse_agg_trade)),
    (r"usdm.*account_trades", W.usdm_user_trades_decoder, None),
    (r"myTrades|account_trades", W.spot_my_trades_decoder, None),
    (
        r"(market|historical)_trades|trades_response|rest_trades",
        W.rest_trades_decoder,
        _each(P.parse_rest_trade),
    ),
    (
        r"klines",
        W.klines_decoder,
        lambda rows, m, s: [P.parse_kline_row(r, m, s, "1m") for r in rows],
    ),
    (r"ticker_?24hr", W.ticker_24hr_decoder, _one(P.parse_rest_ticker_24hr)),
    (
        r"bookTicker_multi",
        msgspec.json.Decoder(list[W.RestBookTicker]),
        _each(P.parse_rest_book_ticker),
    ),
    (r"book_?ticker", W.book_ticker_rest_decoder, _one(P.parse_rest_book_ticker)),
    (r"ticker_price", msgspec.json.Decoder(W.TickerPrice), None),
    (r"avg_price", msgspec.json.Decoder(W.AvgPrice), None),
    (r"premium_index", W.premium_index_decoder, _one(P.parse_premium_index)),
    (r"funding_rate", msgspec.json.Decoder(list[W.FundingRate]), None),
    (r"open_interest", msgspec.json.Decoder(W.OpenInterest), None),
    (r"_time|server_time", msgspec.json.Decoder(W.ServerTime), None),
    (r"ping", msgspec.json.Decoder(W.Pong), None),
    (r"listen_?key", msgspec.json.Decoder(W.ListenKey), None),
    (r"rateLimit_order", msgspec.json.Decoder(list[W.RateLimit]), None),
    (r"account_info_v2", msgspec.json.Decoder(W.UsdmAccount), None),
    (r"usdm.*balance", msgspec.json.Decoder(list[W.UsdmBalance]), None),
    (r"order_ack", W.spot_order_ack_decoder, None),
    (r"order_result", W.spot_order_result_decoder, None),
    (r"order_full", W.spot_order_full_decoder, None),
    (r"cancel_open_orders", None, None),
    (r"cancel_?order", W.spot_order_result_decoder, None),
    (r"usdm.*account_orders", W.usdm_open_orders_decoder, None),
    (r"usdm.*order", W.usdm_order_decoder, None),
    (r"all_orders|openOrders", W.spot_open_orders_decoder, None),
    (r"queryOrder|order_response", W.spot_order_decoder, None),
    (r"position_?risk|positions_", W.position_risk_decoder, None),
    (r"position_?side_dual", msgspec.json.Decoder(W.PositionSideDual), None),
    (r"_error\.json", W.error_decoder, None),
    (r"spot.*account", W.spot_account_decoder, None),
]


def rest_body(walk: Walk, market: Market, name: str, raw: bytes) -> None:
    for pattern, decoder, parser in REST:
        if re.search(pattern, name, re.IGNORECASE):
            wire = W.decode_cancel_open_orders(raw) if decoder is None else decoder.decode(raw)
            walk.count(wire)
            if isinstance(wire, W.ExchangeInfo):
                instruments = P.parse_exchange_info(wire, market)
                assert instruments
            if parser is not None:
                symbol = "BTC/USDT:USDT" if market is Market.LINEAR else "BTC/USDT"
                for event in parser(wire, market.value, symbol):
                    walk.model(event, wire)
            return
    raise AssertionError(f"no REST decoder for {name}")


def errors_catalog(walk: Walk, raw: bytes) -> None:
    """The docs' error catalog: each code and message as the ``{"code","msg"}`` body."""
    catalog = json.loads(raw)
    walk.count(W.error_decoder.decode(json.dumps(catalog["payload_shape"])))
    for err in catalog["errors"]:
        for msg in err["messages"]:
            body = W.error_decoder.decode(json.dumps({"code": err["code"], "msg": msg}))
            assert body.code < 0
            walk.count(body)


def hftbacktest_file(walk: Walk, market: Market, path: Path) -> None:
    for payload in hftbacktest_lines(path):
        if payload.startswith(b'{"lastUpdateId"'):
            snap = W.depth_snapshot_decoder.decode(payload)
            walk.count(snap)
            walk.model(P.parse_depth_snapshot(snap, market.value, "BTC/USDT"), snap)
        else:
            stream, event = W.decode_combined(payload)
            market_event(walk, market, event, stream)


def cryptofeed_file(walk: Walk, market: Market, path: Path) -> None:
    for kind, url, payload in cryptofeed_records(path):
        if kind == "ws":
            ws_json(walk, market, payload)
        elif kind == "outbound":
            walk.count(ws_request_decoder.decode(payload))
        elif kind == "rest":
            rest_body(walk, market, url.split("?")[0].rsplit("/", 1)[1], payload)
        # header and configuration lines are the recorder's own, not Binance's


def depth_csv(walk: Walk, path: Path) -> None:
    """The USD-M history CSV: every row's ids are integers and its levels exact decimals."""
    rows = 0
    for row in nautilus_depth_csv(path):
        assert row["side"] in ("a", "b") and row["update_type"] in ("snap", "set")
        assert int(row["first_update_id"]) <= int(row["last_update_id"])
        int(row["pu"])
        assert Decimal(row["price"]) > 0 and Decimal(row["qty"]) >= 0
        rows += 1
    assert rows
    walk.decoded["csv row"] += rows


def _files(corpus: Path, reference: Path) -> list[tuple[str, Path]]:
    out = [
        (str(p.relative_to(corpus / "binance")), p)
        for p in sorted((corpus / "binance").rglob("*"))
        if p.is_file()
    ]
    out += [(f"payloads/{p.name}", p) for p in sorted((reference / "payloads").glob("binance_*"))]
    return out


def _not_applicable(rel: str) -> str | None:
    for pattern, reason in NOT_APPLICABLE.items():
        if fnmatch.fnmatch(rel, pattern):
            return reason
    return None


def walk_file(walk: Walk, rel: str, path: Path) -> None:
    market = (
        Market.LINEAR if ("usdm" in rel.split("/")[0] or "binance_usdm" in rel) else (Market.SPOT)
    )
    name = path.name
    if "hftbacktest__" in name:
        hftbacktest_file(walk, market, path)
    elif "cryptofeed__" in name:
        cryptofeed_file(walk, market, path)
    elif name.endswith(".csv"):
        depth_csv(walk, path)
    elif "errors_catalog" in name:
        errors_catalog(walk, path.read_bytes())
    elif "/rest/" in rel or "_rest_" in name:
        rest_body(walk, market, rel, path.read_bytes())
    else:
        ws_json(walk, market, path.read_bytes())


@pytest.fixture(scope="module")
def walked(request: pytest.FixtureRequest) -> tuple[Walk, list[str], dict[str, str]]:
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


def test_every_binance_file_decodes_or_is_listed_not_applicable(walked: Any) -> None:
    _walk, failures, skipped = walked
    assert not failures, "\n".join(failures)
    # Every not-applicable pattern still matches something: stale entries hide nothing.
    used = {p for p in NOT_APPLICABLE if any(fnmatch.fnmatch(r, p) for r in skipped)}
    assert used == set(NOT_APPLICABLE)


def test_the_walk_saw_every_kind_of_binance_message(walked: Any) -> None:
    walk, failures, _ = walked
    assert not failures
    expected_wire = {
        "DepthUpdate", "TradeEvent", "AggTradeEvent", "KlineEvent", "Ticker24hrEvent",
        "MiniTicker24hrEvent", "MarkPriceUpdate", "ForceOrderEvent", "BookTicker",
        "PartialDepth", "ServerShutdown", "ExecutionReport", "OutboundAccountPosition",
        "BalanceUpdate", "ListStatus", "EventStreamTerminated", "ListenKeyExpired",
        "OrderTradeUpdate", "AccountUpdate", "TradeLite", "AlgoUpdate", "DepthSnapshot",
        "ExchangeInfo", "RestTicker24hr", "RestBookTicker", "SpotAccount", "SpotOrderAck",
        "SpotOrderResult", "SpotOrderFull", "SpotOrder", "UsdmOrder", "PremiumIndex",
        "WsApiResponse", "ControlReply", "WsRequest", "ErrorBody",
    }  # fmt: skip
    assert expected_wire <= set(walk.decoded), expected_wire - set(walk.decoded)
    assert set(walk.parsed) == {
        "Trade", "AggTrade", "BookDelta", "BookSnapshot", "BookTop", "Bbo", "Kline",
        "Ticker24h", "MarkPrice",
    }  # fmt: skip
    # The recorded streams dominate: thousands of diffs, trades and quotes went through.
    assert walk.parsed["BookDelta"] > 8000
    assert walk.parsed["Bbo"] > 20000
    assert walk.parsed["Trade"] > 5000
