"""Graph paths to tenant operations, with OData paging, ``$filter``, ``$select`` and Graph's error JSON.

One entry point, :meth:`GraphRouter.handle`, serves both top-level HTTP requests and each sub-request of a
JSON ``$batch``, so throttling, faults and counters treat them alike.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from . import schema
from .faults import FaultInjector
from .permissions import APP_ONLY_UNSUPPORTED, missing
from .tenant import USER_DEFAULT_PROPERTIES, GraphError, Tenant
from .throttle import Throttle, resource_units, retry_after_header

T = TypeVar("T")

MAX_BATCH = 20


@dataclass(slots=True)
class GraphRequest:
    method: str
    version: str  # "v1.0" or "beta"
    path: str  # after the version, e.g. "/devices"
    query: dict[str, str]
    body: Any
    headers: dict[str, str]  # lower-case names
    base_url: str  # scheme://host:port, for @odata.nextLink
    app: str


@dataclass(slots=True)
class GraphResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


Handler = Callable[[GraphRequest, dict[str, str]], GraphResponse]


@dataclass(slots=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler
    write: bool


# Intune's 429 body as users report it: the service's own JSON in the message, "RetryAfter": null, no header.
_INTUNE_429_MESSAGE = json.dumps(
    {
        "_version": 3,
        "Message": "Too many requests. Operation: Autopilot - Rate limit exceeded.",
        "CustomApiErrorPhrase": "",
        "RetryAfter": None,
        "ErrorSourceService": "",
        "HttpHeaders": "{}",
    }
)
# Updates that can answer a sporadic 412 ConditionNotMet.
_UPDATES = frozenset({"autopilotDevices.updateDeviceProperties"})


_ID_SEGMENT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def path_shape(path: str) -> str:
    """``/groups/6f1c.../members/$ref`` -> ``/groups/{id}/members/$ref``; a userPrincipalName key
    (``/users/ann@contoso.com``) is an id too."""
    return "/".join("{id}" if _ID_SEGMENT.fullmatch(s) or "@" in s else s for s in path.rstrip("/").split("/"))


def error_body(code: str, message: str, request_id: str, client_request_id: str | None) -> dict[str, Any]:
    inner: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id}
    if client_request_id:
        inner["client-request-id"] = client_request_id
    return {"error": {"code": code, "message": message, "innerError": inner}}


_IMPORTED = "importedWindowsAutopilotDeviceIdentity"


def _schema_problem(route: str, body: Any) -> str | None:
    """A body property the published v1.0 schema does not have: Graph refuses the request with 400
    ("Could not find a property named '...' on type '...'"). Source: schema/v1_0.json (derive.py)."""
    unknown: tuple[str, str] | None = None
    if route == "importedIdentities.create":
        name = schema.unknown_property(_IMPORTED, body)
        unknown = (name, f"microsoft.graph.{_IMPORTED}") if name else None
    elif route == "importedIdentities.import":
        name = schema.unknown_parameter(f"Collection({_IMPORTED})", "import", body)
        unknown = (name, "microsoft.graph.import") if name else None
        items = (body or {}).get("importedWindowsAutopilotDeviceIdentities") if isinstance(body, dict) else None
        for item in items or []:
            name = schema.unknown_property(_IMPORTED, item)
            if unknown is None and name:
                unknown = (name, f"microsoft.graph.{_IMPORTED}")
    elif route == "autopilotDevices.updateDeviceProperties":
        name = schema.unknown_parameter("windowsAutopilotDeviceIdentity", "updateDeviceProperties", body)
        unknown = (name, "microsoft.graph.updateDeviceProperties") if name else None
    if unknown is None:
        return None
    return f"Could not find a property named '{unknown[0]}' on type '{unknown[1]}'."


class GraphRouter:
    def __init__(self, tenant: Tenant, throttle: Throttle, faults: FaultInjector) -> None:
        self.tenant = tenant
        self.throttle = throttle
        self.faults = faults
        self.counters: Counter[str] = Counter()
        # Every (version, method, path shape) a client called, ids as {id}: tests hold a whole run's calls to
        # the published schema independently of this router's own table.
        self.paths: set[tuple[str, str, str]] = set()
        self._routes: list[_Route] = []
        imports = "/deviceManagement/importedWindowsAutopilotDeviceIdentities"
        devices = "/deviceManagement/windowsAutopilotDeviceIdentities"
        self._add("POST", imports, "importedIdentities.create", self._create_import, write=True)
        self._add("POST", imports + "/import", "importedIdentities.import", self._import_action, write=True)
        self._add("GET", imports, "importedIdentities.list", self._list_imports)
        self._add("GET", imports + "/{id}", "importedIdentities.get", self._get_import)
        self._add("DELETE", imports + "/{id}", "importedIdentities.delete", self._delete_import, write=True)
        self._add("GET", devices, "autopilotDevices.list", self._list_devices)
        self._add("GET", devices + "/{id}", "autopilotDevices.get", self._get_device)
        self._add("DELETE", devices + "/{id}", "autopilotDevices.delete", self._delete_device, write=True)
        self._add(
            "POST",
            devices + "/{id}/updateDeviceProperties",
            "autopilotDevices.updateDeviceProperties",
            self._update_device,
            write=True,
        )
        self._add(
            "POST", "/deviceManagement/windowsAutopilotSettings/sync", "autopilotSettings.sync", self._sync, write=True
        )
        self._add("GET", "/deviceManagement/windowsAutopilotSettings", "autopilotSettings.get", self._settings)
        self._add("GET", "/devices", "devices.list", self._list_entra)
        self._add("GET", "/devices/{id}", "devices.get", self._get_entra)
        self._add("POST", "/groups", "groups.create", self._create_group, write=True)
        self._add("GET", "/groups/{id}", "groups.get", self._get_group)
        self._add("PATCH", "/groups/{id}", "groups.update.members", self._bind_members, write=True)
        self._add("GET", "/groups/{id}/members", "groups.members.list", self._list_members)
        self._add("POST", "/groups/{id}/members/$ref", "groups.members.add", self._add_member, write=True)
        self._add(
            "DELETE", "/groups/{id}/members/{member}/$ref", "groups.members.remove", self._remove_member, write=True
        )
        self._add("GET", "/users/{id}", "users.get", self._get_user)
        self._add("GET", "/users/{id}/licenseDetails", "users.licenseDetails.list", self._license_details)
        self._add("GET", "/subscribedSkus", "subscribedSkus.list", self._subscribed_skus)

    def _add(self, method: str, template: str, name: str, handler: Handler, write: bool = False) -> None:
        regex = re.escape(template).replace(r"\{id\}", r"(?P<id>[^/]+)").replace(r"\{member\}", r"(?P<member>[^/]+)")
        self._routes.append(_Route(method, re.compile(regex + "/?", re.IGNORECASE), name, handler, write))

    # -- dispatch -------------------------------------------------------------------------------------------
    def handle(self, request: GraphRequest, *, in_batch: bool = False) -> GraphResponse:
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id")
        route, params = self._match(request)
        name = route.name if route else "unknown"
        response = self._handle(request, route, params, in_batch, request_id, client_request_id)
        response.headers.setdefault("request-id", request_id)
        if client_request_id:
            response.headers.setdefault("client-request-id", client_request_id)
        self.counters[f"{request.method} {name} {response.status}"] += 1
        self.paths.add((request.version, request.method, path_shape(request.path)))
        if response.status == 429:
            self.counters["throttled"] += 1
        return response

    def _error(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str,
        crid: str | None,
        headers: dict[str, str] | None = None,
    ) -> GraphResponse:
        return GraphResponse(status, error_body(code, message, request_id, crid), dict(headers or {}))

    def _handle(
        self,
        request: GraphRequest,
        route: _Route | None,
        params: dict[str, str],
        in_batch: bool,
        request_id: str,
        crid: str | None,
    ) -> GraphResponse:
        if route is None:
            return self._error(
                400, "BadRequest", f"Resource not found for the segment '{request.path}'.", request_id, crid
            )
        if route.name in APP_ONLY_UNSUPPORTED and request.app not in self.tenant.config.delegated_tokens:
            # The api-reference table says Application: "Not supported"; an app-only token is refused.
            message = "Insufficient privileges to complete the operation (application permissions are not supported)."
            return self._error(403, "Authorization_RequestDenied", message, request_id, crid)
        granted = self.tenant.config.app_roles.get(request.app)
        lacking = missing(route.name, set(granted)) if granted is not None else []
        if lacking:
            # Graph's answer when the token's application permissions do not cover the call.
            message = f"Insufficient privileges to complete the operation (needs {', '.join(lacking)})."
            return self._error(403, "Authorization_RequestDenied", message, request_id, crid)
        problem = _schema_problem(route.name, request.body) if request.version == "v1.0" else None
        if problem:
            return self._error(400, "BadRequest", problem, request_id, crid)
        if route.name.startswith("autopilotSettings") and request.version != "beta":
            # windowsAutopilotSettings is not in the published v1.0 schema: only /beta has it.
            return self._error(
                400, "BadRequest", "Resource not found for the segment 'windowsAutopilotSettings'.", request_id, crid
            )
        family = "intune" if route.name.startswith(("importedIdentities", "autopilot")) else "entra"
        units = resource_units(route.name, request.query) if family == "entra" else 1
        wait = self.throttle.admit(request.app, route.write, family, units)
        if wait is None and self.faults.throttled_anyway():
            # "It's possible to receive 429 Too Many Requests responses even when the following limits aren't
            # reached, in situations when the services are under an important load" (throttling-limits).
            wait = 2.0
        if wait is not None:
            if family == "intune" and not self.tenant.config.throttle.intune_retry_after:
                # Intune's way: no header, and the service's own error JSON inside the message.
                return self._error(429, "TooManyRequests", _INTUNE_429_MESSAGE, request_id, crid)
            return self._error(
                429,
                "TooManyRequests",
                "Too many requests. Retry after the given interval.",
                request_id,
                crid,
                {"Retry-After": retry_after_header(wait)},
            )
        fault = self.faults.draw(allow_drop=not in_batch)
        if fault.status:
            names = {500: "InternalServerError", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
            return self._error(fault.status, names[fault.status], "Injected fault.", request_id, crid)
        self.tenant.advance()
        if route.name in _UPDATES and self.faults.precondition_failed():
            return self._error(412, "ConditionNotMet", "The condition specified was not met.", request_id, crid)
        try:
            response = route.handler(request, params)
        except GraphError as error:
            return self._error(error.status, error.code, error.message, request_id, crid, error.headers)
        if route.write and response.status < 300:
            late = self.faults.after_write()
            if late:
                # Applied, yet the caller sees a gateway error: it cannot tell the write happened.
                names = {503: "ServiceUnavailable", 504: "GatewayTimeout"}
                return self._error(late, names[late], "Injected fault after the write was applied.", request_id, crid)
        if family == "entra":  # "Regular responses": the resource units the request used
            response.headers["x-ms-resource-unit"] = str(units)
        response.drop = fault.drop
        return response

    def _match(self, request: GraphRequest) -> tuple[_Route | None, dict[str, str]]:
        for route in self._routes:
            if route.method == request.method:
                match = route.pattern.fullmatch(request.path)
                if match:
                    return route, match.groupdict()
        return None, {}

    # -- OData helpers ----------------------------------------------------------------------------------------
    def _page(
        self, request: GraphRequest, items: Sequence[T], context: str, render: Callable[[T], dict[str, Any]]
    ) -> GraphResponse:
        """One page of ``items``; only that page is rendered (listing 100,000 devices page by page would
        otherwise render every device for every page)."""
        size = self.tenant.config.page_size
        if "$top" in request.query:
            try:
                size = max(1, min(int(request.query["$top"]), 999))
            except ValueError:
                raise GraphError(400, "BadRequest", "Invalid $top value.") from None
        offset = 0
        token = request.query.get("$skiptoken")
        if token:
            try:
                offset = int(base64.urlsafe_b64decode(token.encode()).decode())
            except ValueError:
                raise GraphError(400, "BadRequest", "Invalid $skiptoken.") from None
        page = [render(item) for item in items[offset : offset + size]]
        select = [s.strip() for s in request.query.get("$select", "").split(",") if s.strip()]
        if select:
            page = [{k: v for k, v in item.items() if k in select or k in ("id", "@odata.type")} for item in page]
        body: dict[str, Any] = {
            "@odata.context": f"{request.base_url}/{request.version}/$metadata#{context}",
            "value": page,
        }
        if offset + size < len(items):
            query = dict(request.query)
            query["$skiptoken"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
            body["@odata.nextLink"] = f"{request.base_url}/{request.version}{request.path}?{urlencode(query)}"
        return GraphResponse(200, body)

    # -- imported identities ------------------------------------------------------------------------------------
    def _create_import(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        if not isinstance(request.body, dict):
            raise GraphError(400, "BadRequest", "The request body must be an importedWindowsAutopilotDeviceIdentity.")
        (record,) = self.tenant.import_identities([request.body])
        return GraphResponse(201, record.as_graph())

    def _import_action(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        items = (
            (request.body or {}).get("importedWindowsAutopilotDeviceIdentities")
            if isinstance(request.body, dict)
            else None
        )
        if not isinstance(items, list) or not items:
            raise GraphError(
                400, "BadRequest", "importedWindowsAutopilotDeviceIdentities must be a non-empty collection."
            )
        records = self.tenant.import_identities(items)
        return GraphResponse(200, {"value": [r.as_graph() for r in records]})

    def _list_imports(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        self._select(request, "importedWindowsAutopilotDeviceIdentity")  # a name the type lacks: 400
        items = list(self.tenant.imports.values())
        return self._page(
            request, items, "deviceManagement/importedWindowsAutopilotDeviceIdentities", lambda r: r.as_graph()
        )

    def _get_import(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        return GraphResponse(200, self.tenant.get_import(params["id"]).as_graph())

    def _delete_import(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        self.tenant.delete_import(params["id"])
        return GraphResponse(204)

    # -- Autopilot devices ---------------------------------------------------------------------------------------
    _CONTAINS = re.compile(r"\s*contains\s*\(\s*serialNumber\s*,\s*'((?:[^']|'')*)'\s*\)\s*", re.IGNORECASE)

    def _list_devices(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        self._select(request, "windowsAutopilotDeviceIdentity")  # a name the v1.0 type lacks: 400
        devices = [d for d in self.tenant.devices.values() if self.tenant.listed(d)]
        expression = request.query.get("$filter")
        if expression:
            match = self._CONTAINS.fullmatch(expression)
            if not match:
                raise GraphError(
                    400,
                    "BadRequest",
                    f"Invalid filter clause: '{expression}' is not supported for "
                    "windowsAutopilotDeviceIdentity; use contains(serialNumber,'...').",
                )
            needle = match.group(1).replace("''", "'").casefold()
            devices = [d for d in devices if needle in d.serial.casefold()]
        beta = request.version == "beta"
        return self._page(
            request, devices, "deviceManagement/windowsAutopilotDeviceIdentities", lambda d: d.as_graph(beta)
        )

    def _get_device(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        return GraphResponse(200, self.tenant.get_device(params["id"]).as_graph(request.version == "beta"))

    def _delete_device(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        self.tenant.delete_device(params["id"])
        return GraphResponse(200)

    def _update_device(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        if not isinstance(request.body, dict):
            raise GraphError(400, "BadRequest", "A JSON object body is required.")
        self.tenant.update_device_properties(params["id"], request.body)
        return GraphResponse(204)

    def _sync(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        self.tenant.sync()
        return GraphResponse(204)

    def _settings(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        return GraphResponse(
            200,
            {
                "id": "windowsAutopilotSettings",
                "lastSyncDateTime": self.tenant.last_sync_time,
                "lastManualSyncTriggerDateTime": self.tenant.last_sync_time,
                "syncStatus": "completed",
            },
        )

    # -- Entra devices and groups ---------------------------------------------------------------------------------
    _DEVICE_ID_EQ = re.compile(r"\s*deviceId\s+eq\s+'([^']*)'\s*", re.IGNORECASE)

    def _list_entra(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        entries = list(self.tenant.entra.values())
        expression = request.query.get("$filter")
        if expression:
            match = self._DEVICE_ID_EQ.fullmatch(expression)
            if not match:
                raise GraphError(400, "Request_UnsupportedQuery", f"Unsupported query: '{expression}'.")
            entries = [e for e in entries if e.device_id.lower() == match.group(1).lower()]
        return self._page(request, entries, "devices", lambda e: e.as_graph())

    def _get_entra(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        return GraphResponse(200, self.tenant.get_entra(params["id"]).as_graph())

    def _create_group(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        if not isinstance(request.body, dict):
            raise GraphError(400, "Request_BadRequest", "A JSON object body is required.")
        return GraphResponse(201, self.tenant.create_group(request.body).as_graph())

    def _get_group(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        return GraphResponse(200, self.tenant.get_group(params["id"]).as_graph())

    def _list_members(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        group = self.tenant.get_group(params["id"])
        return self._page(request, list(self.tenant.members(group)), "directoryObjects", lambda e: e.as_graph())

    _REF = re.compile(r".*/(?:directoryObjects|devices)/([^/]+)/?$", re.IGNORECASE)

    def _add_member(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        reference = request.body.get("@odata.id") if isinstance(request.body, dict) else None
        match = self._REF.match(reference or "")
        if not match:
            raise GraphError(400, "Request_BadRequest", "The @odata.id of the member reference is missing or invalid.")
        self.tenant.add_member(params["id"], match.group(1))
        return GraphResponse(204)

    def _bind_members(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        """``PATCH /groups/{id}`` with ``members@odata.bind``: up to 20 members in one request
        (api-reference ``group-post-members``, "Add multiple members to a group in a single request").
        All or nothing, stricter than Graph where its answer is undocumented: one reference that is already
        a member, unknown, or malformed fails the whole request and adds none. Only the member binding is
        emulated: any other property of the PATCH answers 400."""
        body = request.body if isinstance(request.body, dict) else {}
        others = sorted(set(body) - {"members@odata.bind"})
        if others or "members@odata.bind" not in body:
            raise GraphError(
                400, "Request_BadRequest", f"Only 'members@odata.bind' is emulated on PATCH /groups; got {others}."
            )
        references = body["members@odata.bind"]
        if not isinstance(references, list) or not references:
            raise GraphError(400, "Request_BadRequest", "'members@odata.bind' must be a non-empty array of URLs.")
        if len(references) > 20:
            raise GraphError(
                400, "Request_BadRequest", "The number of members to add in one request exceeds the maximum of 20."
            )
        object_ids = []
        for reference in references:
            match = self._REF.match(str(reference))
            if not match:
                raise GraphError(400, "Request_BadRequest", f"Invalid object reference '{reference}'.")
            object_ids.append(match.group(1))
        self.tenant.add_members(params["id"], object_ids)
        return GraphResponse(204)

    def _remove_member(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        self.tenant.remove_member(params["id"], params["member"])
        return GraphResponse(204)

    # -- users and licences (the licence check) ---------------------------------------------------------------
    def _select(self, request: GraphRequest, type_name: str) -> list[str]:
        """``$select`` names, each a property of the v1.0 type (Graph answers 400 otherwise)."""
        names = [n.strip() for n in request.query.get("$select", "").split(",") if n.strip()]
        known = schema.v1_0()["types"].get(type_name, {})
        for name in names:
            if name not in known:
                raise GraphError(
                    400,
                    "BadRequest",
                    f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.",
                )
        return names

    @staticmethod
    def _only(request: GraphRequest, allowed: tuple[str, ...], what: str) -> None:
        for option in request.query:
            if option.startswith("$") and option not in allowed:
                raise GraphError(400, "BadRequest", f"Query option '{option}' is not supported for {what}.")

    def _get_user(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        self._only(request, ("$select", "$expand"), "this request")
        names = self._select(request, "user")
        user = self.tenant.get_user(params["id"])
        body = user.as_graph()
        keep = set(names) | {"id"} if names else set(USER_DEFAULT_PROPERTIES)  # assignedLicenses only on $select
        selected = f"({','.join(names)})" if names else ""
        return GraphResponse(
            200,
            {
                "@odata.context": f"{request.base_url}/{request.version}/$metadata#users{selected}/$entity",
                **{k: v for k, v in body.items() if k in keep},
            },
        )

    def _license_details(self, request: GraphRequest, params: dict[str, str]) -> GraphResponse:
        self._only(request, ("$select",), "licenseDetails")  # the page documents $select only
        names = self._select(request, "licenseDetails")
        user = self.tenant.get_user(params["id"])
        items = self.tenant.license_details(user)
        if names:
            items = [{k: v for k, v in i.items() if k in names or k in ("id", "@odata.type")} for i in items]
        return GraphResponse(
            200,
            {
                "@odata.context": f"{request.base_url}/{request.version}/$metadata#users('{user.id}')/licenseDetails",
                "value": items,
            },
        )

    def _subscribed_skus(self, request: GraphRequest, _: dict[str, str]) -> GraphResponse:
        # subscribedsku-list: "supports only the $select OData query parameter ... It does not support $filter."
        self._only(request, ("$select",), "subscribedSkus")
        names = self._select(request, "subscribedSku")
        items = self.tenant.subscribed_skus()
        if names:
            items = [{k: v for k, v in i.items() if k in names or k in ("id", "@odata.type")} for i in items]
        return GraphResponse(
            200, {"@odata.context": f"{request.base_url}/{request.version}/$metadata#subscribedSkus", "value": items}
        )
