"""Bybit V5 batch order operations (`/v5/order/create-batch`, `cancel-batch`, and the
`order.create-batch` / `order.cancel-batch` ops of `/v5/trade`), bybit.md §3 and §9.

Each item is the single-order operation of `bybit_trading` applied to
`{"category": ..., **item}`; the answer lists every item in request order in
`result.list` (REST) / `data.list` (WS) and its own code in `retExtInfo.list[{code,msg}]`.
Items beyond the per-UID rate budget fail with 10006 while the others succeed (bybit.md §3).
Chosen where the docs are silent: more items than the category allows (10 spot, 20 linear)
or an empty/missing `request` refuses the whole request with 10001; a failed item still
carries its `category`, `symbol` and `orderLinkId`, with an empty `orderId`.
"""

from typing import Any, NamedTuple

from exconn.sim import bybit_trading as T
from exconn.sim import errors as E
from exconn.sim.bybit_core import BybitCore

MAX_ITEMS = {"spot": 10, "linear": 20}
CREATE = "/v5/order/create-batch"
CANCEL = "/v5/order/cancel-batch"
OPS = {CREATE: T.create_order, CANCEL: T.cancel_order}


class BatchAnswer(NamedTuple):
    code: int
    msg: str
    result: Any
    ext: list[dict[str, Any]]


def items_of(params: dict[str, Any]) -> list[Any] | None:
    items = params.get("request")
    return items if isinstance(items, list) else None


def run(
    core: BybitCore, account: str, path: str, params: dict[str, Any], admitted: int
) -> BatchAnswer:
    """Apply a batch; ``admitted`` items fit the rate budget, the rest fail with 10006."""
    category = params.get("category")
    items = items_of(params)
    if category not in MAX_ITEMS:
        return BatchAnswer(10001, "Illegal category", {}, [])
    if not items or len(items) > MAX_ITEMS[str(category)]:
        return BatchAnswer(10001, "params error: batch request size invalid", {}, [])
    op = OPS[path]
    rows: list[dict[str, Any]] = []
    ext: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            code, msg, result = 10001, E.BYBIT_PARAM_ERROR, {}
            item = {}
        elif i >= admitted:
            code, msg, result = 10006, E.BYBIT_TOO_MANY_VISITS, {}
        else:
            code, msg, result = op(core, account, {**item, "category": category})
        row: dict[str, Any] = {
            "category": category,
            "symbol": str(item.get("symbol") or ""),
            "orderId": str(result.get("orderId", "")) if code == 0 else "",
            "orderLinkId": str(
                (result.get("orderLinkId") if code == 0 else None) or item.get("orderLinkId") or ""
            ),
        }
        if path == CREATE:
            row["createAt"] = str(core.now()) if code == 0 else ""
        rows.append(row)
        ext.append({"code": code, "msg": "OK" if code == 0 else msg})
    return BatchAnswer(0, "OK", {"list": rows}, ext)
