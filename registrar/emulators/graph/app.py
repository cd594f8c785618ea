"""The emulator's ASGI application: Graph under ``/v1.0`` and ``/beta``, control API under ``/_emulator``."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import EmulatorConfig
from .faults import FaultInjector
from .router import MAX_BATCH, GraphRequest, GraphResponse, GraphRouter, error_body, path_shape
from .tenant import GraphError, Tenant
from .throttle import Throttle

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

VERSIONS = ("v1.0", "beta")


class GraphEmulatorApp:
    """ASGI callable. All state lives on the server's event loop thread; handlers never await mid-update."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.tenant = Tenant(self.config)
        self.throttle = Throttle(self.config.throttle, self.tenant.clock.monotonic)
        self.faults = FaultInjector(self.config.faults)
        self.router = GraphRouter(self.tenant, self.throttle, self.faults)
        # HTTP requests as the client sent them (a $batch is one, whatever it carries); ``router.counters``
        # counts each request Graph handled, batch items included (what throttling sees).
        self.http_requests: Counter[str] = Counter()
        self.control = _control_app(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(tuple(f"/{v}/" for v in VERSIONS)):
            await self.control(scope, receive, send)
            return
        await self._graph(scope, receive, send)

    # -- Graph ------------------------------------------------------------------------------------------------
    async def _graph(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        _, version, path = scope["path"].split("/", 2)
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            body = error_body(
                "InvalidAuthenticationToken",
                "Access token is empty.",
                "unauthenticated",
                headers.get("client-request-id"),
            )
            await _send(send, GraphResponse(401, body))
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            await _send(send, GraphResponse(400, error_body("BadRequest", "Invalid JSON body.", "invalid", None)))
            return
        graph_request = GraphRequest(
            method=request.method,
            version=version,
            path="/" + path,
            query=dict(request.query_params),
            body=body,
            headers=headers,
            base_url=f"{request.url.scheme}://{request.url.netloc}",
            app=auth[7:].strip(),
        )
        if self.config.faults.latency_ms:
            await asyncio.sleep(self.config.faults.latency_ms / 1000.0)
        if graph_request.path.rstrip("/") == "/$batch" and request.method == "POST":
            response = self._batch(graph_request)
            self.router.paths.add((graph_request.version, "POST", "/$batch"))
            self.http_requests["POST /$batch"] += 1
        else:
            response = self.router.handle(graph_request)
            self.http_requests[f"{request.method} {path_shape(graph_request.path)}"] += 1
        await _send(send, response)

    def _batch(self, outer: GraphRequest) -> GraphResponse:
        requests = outer.body.get("requests") if isinstance(outer.body, dict) else None
        if not isinstance(requests, list) or not requests:
            return GraphResponse(400, error_body("BadRequest", "Invalid batch payload format.", "batch", None))
        if len(requests) > MAX_BATCH:
            return GraphResponse(
                400,
                error_body(
                    "BadRequest",
                    f"Number of batch request steps exceeds the maximum value of {MAX_BATCH}.",
                    "batch",
                    None,
                ),
            )
        problem = _batch_problem(requests)
        if problem:
            return GraphResponse(400, error_body("BadRequest", problem, "batch", None))
        responses = []
        statuses: dict[str, int] = {}
        for item in requests:
            item_id = str(item.get("id"))
            depends = item.get("dependsOn") or []
            if any(statuses.get(str(d).lower(), 200) >= 400 for d in depends):
                response = GraphResponse(424, error_body("FailedDependency", "A dependency failed.", item_id, None))
            else:
                response = self.router.handle(self._sub_request(outer, item), in_batch=True)
            statuses[item_id.lower()] = response.status
            entry: dict[str, Any] = {"id": item_id, "status": response.status, "headers": response.headers}
            if response.body is not None:
                entry["headers"] = {**response.headers, "Content-Type": "application/json"}
                entry["body"] = response.body
            responses.append(entry)
        # "If any requests in a batch are throttled ... The batch itself fails with a status code of 424
        # (Failed Dependency)" (learn.microsoft.com/graph/throttling, "Throttling and batching"); json-batching
        # says a parseable batch answers 200. Both documented: 424 unless configured otherwise, the answers
        # in the body either way.
        throttled = any(status == 429 for status in statuses.values())
        status = 424 if throttled and self.tenant.config.throttle.batch_424_when_throttled else 200
        return GraphResponse(status, {"responses": responses})

    @staticmethod
    def _sub_request(outer: GraphRequest, item: dict[str, Any]) -> GraphRequest:
        url = str(item.get("url") or "")
        parts = urlsplit(url if "://" in url else "http://x/" + url.lstrip("/"))
        path = "/" + parts.path.lstrip("/")
        headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        headers.setdefault("client-request-id", outer.headers.get("client-request-id", ""))
        return GraphRequest(
            method=str(item.get("method") or "GET").upper(),
            version=outer.version,
            path=path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            body=item.get("body"),
            headers=headers,
            base_url=outer.base_url,
            app=outer.app,
        )


_ITEM_PROPERTIES = {"id", "method", "url", "headers", "body", "dependsOn"}


def _batch_problem(requests: list[Any]) -> str | None:
    """What makes Graph refuse a JSON batch as a whole (learn.microsoft.com/graph/json-batching): each item
    has an ``id`` unique in the batch, a ``method`` and a ``url`` *relative* to the version root; only the
    documented properties (``dependsOn`` so spelt, naming ids of the same batch). Absolute or versioned
    URLs, which some SDKs produce (msgraph-sdk-python#1015, msgraph-sdk-python-core#1116), are refused.
    Where Graph's exact answer is not documented the emulator is stricter: any of these fails the batch."""
    seen: set[str] = set()
    for index, item in enumerate(requests):
        if not isinstance(item, dict):
            return f"Invalid batch payload format: request {index} is not an object."
        unknown = sorted(set(item) - _ITEM_PROPERTIES)
        if unknown:
            return f"Invalid batch payload format: unknown property '{unknown[0]}' in request {index}."
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            return f"Invalid batch payload format: request {index} has no id."
        if item_id.lower() in seen:  # "Not case-sensitive. Must be unique in the batch"
            return f"Batch request ids must be unique: '{item_id}' appears more than once."
        seen.add(item_id.lower())
        headers = item.get("headers")
        if headers is not None and not isinstance(headers, dict):
            return f"Invalid batch payload format: the headers of request {item_id} are not an object."
        if "body" in item and not any(str(name).lower() == "content-type" for name in headers or {}):
            # "When a body is included with the request, the headers object must contain a value for Content-Type"
            return f"Invalid batch payload format: request {item_id} has a body but no Content-Type header."
        if not item.get("method") or not isinstance(item.get("url"), str) or not item["url"]:
            return f"Invalid batch payload format: request {item_id} needs a method and a url."
        url = item["url"]
        if "://" in url or any(url.lstrip("/").startswith(f"{v}/") for v in VERSIONS):
            return f"Invalid request URL '{url}': batch request URLs must be relative to the version root."
        depends = item.get("dependsOn", [])
        if not isinstance(depends, list) or any(str(d).lower() not in seen - {item_id.lower()} for d in depends):
            return f"Invalid dependsOn in request {item_id}: it must list ids of earlier requests."
    return None


async def _send(send: Send, response: GraphResponse) -> None:
    payload = b"" if response.body is None else json.dumps(response.body).encode()
    headers = [(k.lower().encode(), str(v).encode()) for k, v in response.headers.items()]
    if response.body is not None:
        headers.append((b"content-type", b"application/json; odata.metadata=minimal"))
    if response.drop:  # a connection that dies mid-response, as flaky networks and gateways do
        headers.append((b"content-length", str(len(payload) + 64).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
        raise ConnectionAbortedError("emulated dropped connection")
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _control_app(emulator: GraphEmulatorApp) -> Starlette:
    """``/_emulator``: what a test or demo needs to set the scene and read the outcome."""
    tenant = emulator.tenant

    async def body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        return json.loads(raw) if raw else {}

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                tenant.advance()
                return await handler(request)
            except GraphError as error:
                return JSONResponse({"error": error.message}, status_code=error.status)
            except (ValueError, KeyError, TypeError) as error:
                return JSONResponse({"error": str(error)}, status_code=400)

        return run

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "tenantId": emulator.config.tenant_id})

    async def reset(request: Request) -> Response:
        tenant.reset()
        emulator.throttle.reset()
        emulator.faults.reset()
        emulator.router.counters.clear()
        emulator.router.paths.clear()
        emulator.http_requests.clear()
        return JSONResponse({"status": "reset"})

    async def config(request: Request) -> Response:
        if request.method == "PATCH":
            emulator.config.update(await body(request))
        return JSONResponse(emulator.config.as_dict())

    async def advance(request: Request) -> Response:
        tenant.clock.advance(float((await body(request))["seconds"]))
        tenant.advance()
        return JSONResponse({"now": tenant.clock.now().isoformat()})

    async def seed(request: Request) -> Response:
        data = await body(request)
        tenant.other_tenant_serials.update(s.strip().casefold() for s in data.get("otherTenantSerials", []))
        devices = [
            tenant.seed_device(
                d["serial"],
                d.get("manufacturer", "Contoso Devices"),
                d.get("model", "Surfboard Laptop 7"),
                d.get("groupTag", ""),
            )
            for d in data.get("devices", [])
        ]
        groups = [tenant.create_group(g) for g in data.get("groups", [])]
        # Users and their licences (part numbers): {"userPrincipalName", "skus": [...], "displayName"?, "id"?}.
        # Seeding a user again replaces its licences (an admin assigning one).
        users = [
            tenant.seed_user(u["userPrincipalName"], list(u.get("skus", [])), u.get("displayName", ""), u.get("id", ""))
            for u in data.get("users", [])
        ]
        return JSONResponse(
            {
                "devices": [d.as_graph(True) for d in devices],
                "groups": [g.as_graph() for g in groups],
                "users": [u.as_graph() for u in users],
            }
        )

    async def enroll(request: Request) -> Response:
        data = await body(request)
        device = tenant.enroll(data["serial"])
        if data.get("lastContactedDateTime"):
            device.last_contacted = data["lastContactedDateTime"]
        return JSONResponse(device.as_graph(True))

    async def membership(request: Request) -> Response:
        """A person changing a group by hand in the portal (dynamic groups refuse, as in Graph)."""
        data = await body(request)
        group_id = request.path_params["group_id"]
        object_id = data.get("objectId") or tenant.entra_for_serial(data["serial"]).id
        if data.get("action", "add") == "add":
            tenant.add_member(group_id, object_id)
        else:
            tenant.remove_member(group_id, object_id)
        return JSONResponse({"members": sorted(tenant.get_group(group_id).members)})

    async def counters(request: Request) -> Response:
        if request.method == "DELETE":
            emulator.router.counters.clear()
            emulator.router.paths.clear()
            emulator.http_requests.clear()
            emulator.faults.reset()
        by_route: dict[str, int] = {}
        for key, count in emulator.router.counters.items():
            by_route[key] = count
        return JSONResponse(
            {
                "requests": by_route,
                "throttled": emulator.router.counters.get("throttled", 0),
                "http": dict(emulator.http_requests),
                "faults": emulator.faults.injected,
            }
        )

    async def state(request: Request) -> Response:
        return JSONResponse(
            {
                "imports": [r.as_graph() for r in tenant.imports.values()],
                "devices": [d.as_graph(True) for d in tenant.devices.values()],
                "entra": [e.as_graph() for e in tenant.entra.values()],
                "groups": [
                    {**g.as_graph(), "members": [e.id for e in tenant.members(g)]} for g in tenant.groups.values()
                ],
                "users": [{**u.as_graph(), "licenseDetails": tenant.license_details(u)} for u in tenant.users.values()],
                "subscribedSkus": tenant.subscribed_skus(),
                "otherTenantSerials": sorted(tenant.other_tenant_serials),
                "importedSerials": tenant.imported_serials,
                "lastSyncDateTime": tenant.last_sync_time,
            }
        )

    async def paths(request: Request) -> Response:
        shapes = sorted(emulator.router.paths)
        return JSONResponse({"paths": [{"version": v, "method": m, "path": p} for v, m, p in shapes]})

    async def writes(request: Request) -> Response:
        log = emulator.throttle.write_log
        return JSONResponse({"writes": [{"at": at, "app": app, "family": family} for at, app, family in log]})

    routes = [
        Route("/_emulator/writes", guarded(writes)),
        Route("/_emulator/paths", guarded(paths)),
        Route("/_emulator/health", guarded(health)),
        Route("/_emulator/reset", guarded(reset), methods=["POST"]),
        Route("/_emulator/config", guarded(config), methods=["GET", "PATCH"]),
        Route("/_emulator/clock/advance", guarded(advance), methods=["POST"]),
        Route("/_emulator/seed", guarded(seed), methods=["POST"]),
        Route("/_emulator/enroll", guarded(enroll), methods=["POST"]),
        Route("/_emulator/groups/{group_id}/membership", guarded(membership), methods=["POST"]),
        Route("/_emulator/counters", guarded(counters), methods=["GET", "DELETE"]),
        Route("/_emulator/state", guarded(state)),
    ]
    return Starlette(routes=routes)
