"""The simulator's HTTP control endpoint, mounted on every venue app under ``/sim/``.

    POST   /sim/faults        {"kind": "http_429", "endpoint": "GET /api/v3/depth", "count": 2}
    GET    /sim/faults        -> [{"id": 1, "kind": ..., "fired": 0, ...}]
    DELETE /sim/faults/{id}
    DELETE /sim/faults        (all)

Not an exchange endpoint: real venues have nothing under /sim/, so a client never hits it by
accident.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from exconn.sim.fault_registry import FaultRegistry


def add_control_routes(
    app: web.Application, registry: FaultRegistry, now_ms: Callable[[], int]
) -> None:
    async def create(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            fault_id = registry.add_json(body, now_ms())
        except (ValueError, json.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"id": fault_id})

    async def listing(request: web.Request) -> web.Response:
        return web.json_response(registry.list(now_ms()))

    async def delete_one(request: web.Request) -> web.Response:
        try:
            fault_id = int(request.match_info["fault_id"])
        except ValueError:
            return web.json_response({"error": "fault id must be an integer"}, status=400)
        if not registry.remove(fault_id):
            return web.json_response({"error": f"no fault {fault_id}"}, status=404)
        return web.json_response({})

    async def delete_all(request: web.Request) -> web.Response:
        registry.clear()
        return web.json_response({})

    app.router.add_post("/sim/faults", create)
    app.router.add_get("/sim/faults", listing)
    app.router.add_delete("/sim/faults/{fault_id}", delete_one)
    app.router.add_delete("/sim/faults", delete_all)
