"""Positions and the unified wallet as Bybit reports them, read from the two ledgers.

Chosen where the sim departs from a real Unified Trading Account (documented in
docs/simulator.md): spot balances and the linear wallet are separate pools (one ledger per
category), and wallet-balance reports their sum per coin; USD values price stablecoins at 1
and other coins at their spot last price (0 when there is no spot market for them).
"""

import hashlib
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from exconn.sim.accounts import Ledger
from exconn.sim.auth import ApiKey, Permission
from exconn.sim.bybit_wire import Wire, plain
from exconn.sim.fixed import SCALE
from exconn.sim.matching import PositionSide

STABLE = ("USDT", "USDC", "USD")


def position_json(
    ledger: Ledger, account_id: str, wire: Wire, mark: int, ws: bool, seq: int, now_ms: int
) -> dict[str, Any]:
    account = ledger.account(account_id)
    pos = account.position(wire.symbol, PositionSide.BOTH)
    inst = ledger.instruments[wire.symbol]
    leverage = ledger.leverage(account, wire.symbol)
    size = abs(pos.size)
    entry = pos.entry_price()
    value = inst.notional_units(pos.cost)
    mark_value = inst.notional_units(mark * size)
    upl = (mark_value - value) if pos.size > 0 else (value - mark_value) if pos.size < 0 else 0
    im = -(-value // leverage) if value else 0
    price_text = plain(int(entry * wire.price_units(1))) if entry is not None else "0"
    if entry is not None and entry.denominator == 1:
        price_text = wire.price(int(entry))
    out: dict[str, Any] = {
        "category": wire.category,
        "positionIdx": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": wire.symbol,
        "side": "Buy" if pos.size > 0 else "Sell" if pos.size < 0 else "",
        "size": wire.qty(size),
        ("entryPrice" if ws else "avgPrice"): price_text,
        "positionValue": plain(value),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 2 if pos.size else 0,
        "leverage": str(leverage),
        "breakEvenPrice": price_text,
        "positionBalance": plain(im),
        "markPrice": wire.price(mark),
        "liqPrice": "",
        "bustPrice": "",
        "positionMM": plain(im // 2),
        "positionMMByMp": plain(im // 2),
        "positionIM": plain(im),
        "positionIMByMp": plain(im),
        "tpslMode": "Full",
        "takeProfit": "0",
        "stopLoss": "0",
        "trailingStop": "0",
        "unrealisedPnl": plain(upl),
        "curRealisedPnl": plain(pos.realised),
        "cumRealisedPnl": plain(pos.realised),
        "seq": seq,
        "isReduceOnly": False,
        ("mmrSysUpdatedTime" if ws else "mmrSysUpdateTime"): "",
        "leverageSysUpdatedTime": "",
        "sessionAvgPrice": "",
        "createdTime": str(now_ms),
        "updatedTime": str(now_ms),
    }
    return out


def wallet_json(
    spot: Ledger | None,
    linear: Ledger | None,
    account_id: str,
    usd_price: Callable[[str], Fraction],
    coins: list[str] | None,
) -> dict[str, Any]:
    per_coin: dict[str, dict[str, int]] = {}

    def row(coin: str) -> dict[str, int]:
        return per_coin.setdefault(
            coin, {"wallet": 0, "locked": 0, "order_im": 0, "pos_im": 0, "realised": 0}
        )

    if spot is not None and account_id in spot.accounts:
        for coin, bal in spot.account(account_id).balances.items():
            r = row(coin)
            r["wallet"] += bal.total
            r["locked"] += bal.locked
    if linear is not None and account_id in linear.accounts:
        account = linear.account(account_id)
        for coin, units in account.wallets.items():
            r = row(coin)
            r["wallet"] += units
            r["order_im"] += linear.order_margin(account, coin)
            r["pos_im"] += linear.position_margin(account, coin)
        for (symbol, _), pos in account.positions.items():
            row(linear.instruments[symbol].quote)["realised"] += pos.realised
    wanted = coins if coins else [c for c, r in per_coin.items() if r["wallet"] or r["locked"]]
    coin_list = []
    total_usd = Fraction(0)
    avail_usd = Fraction(0)
    im_usd = Fraction(0)
    for coin in wanted:
        r = per_coin.get(coin) or row(coin)
        px = usd_price(coin)
        usd = Fraction(r["wallet"]) * px
        total_usd += usd
        avail_usd += Fraction(r["wallet"] - r["locked"] - r["order_im"] - r["pos_im"]) * px
        im_usd += Fraction(r["order_im"] + r["pos_im"]) * px
        coin_list.append(
            {
                "coin": coin,
                "equity": plain(r["wallet"]),
                "usdValue": plain(int(usd)),
                "walletBalance": plain(r["wallet"]),
                "availableToWithdraw": "",
                "availableToBorrow": "",
                "borrowAmount": "0",
                "accruedInterest": "0",
                "totalOrderIM": plain(r["order_im"]),
                "totalPositionIM": plain(r["pos_im"]),
                "totalPositionMM": plain(r["pos_im"] // 2),
                "unrealisedPnl": "0",
                "cumRealisedPnl": plain(r["realised"]),
                "bonus": "0",
                "collateralSwitch": True,
                "marginCollateral": True,
                "locked": plain(r["locked"]),
                "spotHedgingQty": "0",
                "spotBorrow": "0",
            }
        )
    total = plain(int(total_usd))
    return {
        "accountType": "UNIFIED",
        "accountIMRate": "0",
        "accountIMRateByMp": "0",
        "accountMMRate": "0",
        "accountMMRateByMp": "0",
        "accountLTV": "0",
        "totalEquity": total,
        "totalWalletBalance": total,
        "totalMarginBalance": total,
        "totalAvailableBalance": plain(int(avail_usd)),
        "totalPerpUPL": "0",
        "totalInitialMargin": plain(int(im_usd)),
        "totalInitialMarginByMp": plain(int(im_usd)),
        "totalMaintenanceMargin": plain(int(im_usd / 2)),
        "totalMaintenanceMarginByMp": plain(int(im_usd / 2)),
        "coin": coin_list,
    }


def usd_units_price(last_units: Callable[[str], int | None]) -> Callable[[str], Fraction]:
    """USD per unit of a coin: stablecoins 1, others their spot last price (1e-8 units)."""

    def price(coin: str) -> Fraction:
        if coin in STABLE:
            return Fraction(1)
        units = last_units(coin)
        return Fraction(units, SCALE) if units else Fraction(0)

    return price


# Chosen fixed dates: the docs describe these fields but nothing in the sim ages a key.
KEY_CREATED_AT = "2024-01-01T00:00:00Z"
KEY_EXPIRED_AT = "2099-01-01T00:00:00Z"


def user_id(account_id: str) -> int:
    """A stable numeric UID per account (Bybit UIDs are integers; chosen derivation)."""
    digest = hashlib.sha256(account_id.encode()).digest()
    return 10_000_000 + int.from_bytes(digest[:4], "big") % 90_000_000


def api_key_json(key: ApiKey) -> dict[str, Any]:
    """GET /v5/user/query-api (docs v5/user/apikey-info): the calling key's own record.

    Permission groups are mapped from the sim's coarse permissions; the account is always a
    unified trading account (`uta` 1), the only kind the sim models. ccxt reads `uta` and
    `unified` here to choose between UTA and classic endpoints."""
    perms = key.permissions
    futures, spot = Permission.FUTURES_TRADE in perms, Permission.SPOT_TRADE in perms
    return {
        "id": str(user_id(key.api_key)),
        "note": "exconn-sim",
        "apiKey": key.api_key,
        "readOnly": 0 if futures or spot else 1,
        "secret": "",
        "permissions": {
            "ContractTrade": ["Order", "Position"] if futures else [],
            "Spot": ["SpotTrade"] if spot else [],
            "Wallet": ["AccountTransfer", "Withdraw"] if Permission.WITHDRAW in perms else [],
            "Options": [],
            "Derivatives": ["DerivativesTrade"] if futures else [],
            "CopyTrading": [],
            "BlockTrade": [],
            "Exchange": [],
            "NFT": [],
            "Affiliate": [],
            "Earn": [],
        },
        "ips": sorted(key.ips) if key.ips is not None else ["*"],
        "type": 1,
        "deadlineDay": -1 if key.ips is not None else 90,  # IP-bound keys do not expire
        "expiredAt": KEY_EXPIRED_AT,
        "createdAt": KEY_CREATED_AT,
        "unified": 0,  # deprecated UMA flag (0 for a UTA)
        "uta": 1,
        "userID": user_id(key.account),
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": True,
        "parentUid": "0",
        "kycLevel": "LEVEL_DEFAULT",
        "kycRegion": "",
    }


def account_info_json() -> dict[str, Any]:
    """GET /v5/account/info (docs v5/account/account-info), as the sim's accounts are:
    UTA 2.0 (`unifiedMarginStatus` 5), cross margin ("REGULAR_MARGIN"), no DCP, no SMP
    group, no spot hedging."""
    return {
        "marginMode": "REGULAR_MARGIN",
        "updatedTime": "0",
        "unifiedMarginStatus": 5,
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
        "isMasterTrader": False,
        "spotHedgingStatus": "OFF",
    }
