"""HTTP trigger of the admin portal (``/api/portal/...``): its page, its files and its API, behind App
Service Authentication. Thin: who is calling (``shared/portal/auth.py``), then one call into
``shared/portal/api.py``. Every answer carries a strict Content-Security-Policy: the page loads nothing
from the internet and runs no inline script or style.
"""

from __future__ import annotations

import json
import mimetypes
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import azure.functions as func

from shared.portal import api
from shared.portal.auth import Denied, Principal, easy_auth_enabled, principal
from shared.runtime import Runtime, runtime

STATIC = Path(__file__).resolve().parent.parent / "shared" / "portal" / "static"
_STATIC_NAME = re.compile(r"[a-z0-9-]+\.(?:html|js|css|svg|png)")
# Requests that change something must carry this header: a page on another site cannot send it without
# the portal's consent (CORS preflight), so a signed-in admin's browser cannot be made to retry a device.
CSRF_HEADER = "x-registrar-portal"


def csp(blob_origin: str) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src 'self' {blob_origin}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ).replace("  ", " ")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _respond(answer: api.Answer, blob_origin: str, cache: str = "no-store") -> func.HttpResponse:
    if isinstance(answer.body, bytes | str):
        body = answer.body
    else:
        body = json.dumps(answer.body)
    headers = {
        "Content-Security-Policy": csp(blob_origin),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": cache,
        **answer.headers,
    }
    mimetype, _, charset = answer.content_type.partition("; charset=")
    return func.HttpResponse(
        body, status_code=answer.status, headers=headers, mimetype=mimetype, charset=charset or "utf-8"
    )


_CONTEXTS: dict[int, api.PortalContext] = {}


def _context(rt: Runtime) -> api.PortalContext:
    """One per runtime (per process in Azure): the licence cache lives here."""
    found = _CONTEXTS.get(id(rt))
    if found is None:
        found = _CONTEXTS[id(rt)] = _new_context(rt)
    return found


def _new_context(rt: Runtime) -> api.PortalContext:
    from shared.portal.graph_licences import licence_checker

    return api.PortalContext(
        store=rt.store,
        profiles=rt.settings.profiles,
        blobs=rt.blobs,
        sender=rt.sender,
        tenant=rt.settings.tenant_id,
        licences=licence_checker(rt.settings),
    )


def main(req: func.HttpRequest, rt: Runtime | None = None, *, development_sign_in: bool = False) -> func.HttpResponse:
    """``development_sign_in``: the local host's front made the principal header (never set in Azure)."""
    rt = rt or runtime()
    blob_origin = _origin(rt.blobs.url)
    path = unquote(req.route_params.get("path", "") or "").strip("/")
    if req.method == "GET" and (path == "" or _STATIC_NAME.fullmatch(path.removeprefix("static/"))):
        return _static(path.removeprefix("static/") or "index.html", blob_origin)
    ctx = _context(rt)
    try:
        who = principal(
            dict(req.headers), set(rt.settings.profiles.partners), trusted=development_sign_in or easy_auth_enabled()
        )
    except Denied as denied:
        return _respond(api.error(denied.status, "Denied", denied.message), blob_origin)
    if req.method == "POST" and req.headers.get(CSRF_HEADER) != "1":
        return _respond(api.error(403, "Denied", f"requests that change something need the {CSRF_HEADER} header"), blob_origin)
    return _respond(_route(ctx, who, req, path), blob_origin)


def _route(ctx: api.PortalContext, who: Principal, req: func.HttpRequest, path: str) -> api.Answer:
    query = {k: v for k, v in req.params.items()}
    parts = path.split("/")
    if parts[0] != "api" or len(parts) < 2:
        return api.error(404, "NotFound", f"no page {path!r}")
    parts = parts[1:]
    if req.method == "GET":
        if parts == ["me"]:
            return api.me(ctx, who)
        if parts == ["devices"]:
            return api.devices(ctx, who, query)
        if parts == ["devices.csv"]:
            return api.export_devices(ctx, who, query)
        if len(parts) == 2 and parts[0] == "devices":
            return api.device_detail(ctx, who, parts[1])
        if parts == ["uploads"]:
            return api.uploads(ctx, who, query)
        if parts == ["upload-locate"]:
            return api.locate_upload(ctx, who, query)
        if len(parts) == 2 and parts[0] == "uploads":
            return api.upload_detail(ctx, who, parts[1])
        if len(parts) == 3 and parts[0] == "uploads" and parts[2] == "report.csv":
            return api.report(ctx, who, parts[1])
    if req.method == "POST":
        try:
            body = req.get_json() if req.get_body() else {}
        except ValueError:
            return api.error(400, "BadRequest", "the body must be JSON")
        if not isinstance(body, dict):
            return api.error(400, "BadRequest", "the body must be a JSON object")
        if parts == ["upload-address"]:
            return api.upload_address(ctx, who, body)
        if len(parts) == 3 and parts[0] == "devices" and parts[2] == "retry":
            return api.retry(ctx, who, parts[1])
    return api.error(404, "NotFound", f"no {req.method} {'/'.join(parts)!r}")


def _static(name: str, blob_origin: str) -> func.HttpResponse:
    file = STATIC / name
    if not file.is_file():
        return _respond(api.error(404, "NotFound", f"no file {name!r}"), blob_origin)
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return _respond(api.Answer(200, file.read_bytes(), kind), blob_origin, cache="no-cache")
