"""The local HTTP front: what App Service (with Authentication) does in front of the function app's HTTP
triggers, for ``registrar dev``, the demo and the browser tests.

It maps ``/api/portal/{path}`` to ``functions.portal.main`` with a ``func.HttpRequest``, like the
Functions host, and stands in for App Service Authentication with a development sign-in: a form at
``/.auth/login/aad`` (Easy Auth's own path) where you pick "administrator" or a partner; the choice is
kept in a signed cookie and turned into an ``X-MS-CLIENT-PRINCIPAL`` header shaped as Easy Auth's. Any
such header the browser sends is dropped, as Easy Auth drops it. It also allows the portal's origin to
PUT blobs on Azurite (CORS), which Bicep does for the storage account in Azure.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import uvicorn
from azure.storage.blob import CorsRule
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from functions import portal
from shared.config import Settings
from shared.portal.auth import ADMIN_ROLE, HEADER, PARTNER_ROLE_PREFIX, encode_principal
from shared.runtime import Runtime
from shared.storage import blob_service, queue_service, table_service

from .servicebus import LocalServiceBusQueue

COOKIE = "registrar_dev_sign_in"
PORTAL_PATH = "/api/portal/"
_SIGN_IN_CSP = "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"


def allow_portal_uploads(settings: Settings, origin: str) -> None:
    """CORS on Azurite's blob service: the portal's page may PUT a blob (with its SAS) and read the ETag."""
    rule = CorsRule(
        [origin], ["PUT", "OPTIONS"], allowed_headers=["*"], exposed_headers=["etag", "x-ms-request-id"],
        max_age_in_seconds=600,
    )  # fmt: skip
    blob_service(settings).set_service_properties(cors=[rule])


class PortalFront:
    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        sender = LocalServiceBusQueue(
            queue_service(settings),
            table_service(settings),
            settings.queue_name,
            duplicate_window=settings.duplicate_window_seconds,
        )
        self.runtime = Runtime.build(settings, sender=sender)
        self._secret = secrets.token_bytes(32)
        self.host = host
        self.port = port or _free_port(host)
        self.url = f"http://{host}:{self.port}{PORTAL_PATH}"
        self.origin = f"http://{host}:{self.port}"
        self.app = Starlette(
            routes=[
                Route("/", lambda request: RedirectResponse(PORTAL_PATH)),
                Route("/.auth/login/aad", self.sign_in_form, methods=["GET"]),
                Route("/.auth/login/dev", self.sign_in, methods=["POST"]),
                Route("/.auth/logout", self.sign_out, methods=["GET"]),
                Route("/api/portal", lambda request: RedirectResponse(PORTAL_PATH)),
                Route("/api/portal/{path:path}", self.portal, methods=["GET", "POST"]),
            ]
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- development sign-in ------------------------------------------------------------------------------------
    def _sign(self, value: str) -> str:
        mac = hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()
        return f"{value}|{mac}"

    def _unsign(self, cookie: str) -> str | None:
        value, _, mac = cookie.rpartition("|")
        good = hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()
        return value if value and hmac.compare_digest(mac, good) else None

    async def sign_in_form(self, request: Request) -> Response:
        partners = sorted(self.settings.profiles.partners)
        choices = [("admin", "Administrator (every device)")] + [(f"partner:{p}", f"Partner {p}") for p in partners]
        radios = "\n".join(
            f'<div><input type="radio" name="as" id="as-{i}" value="{html.escape(v)}"{" checked" if i == 0 else ""}>'
            f' <label for="as-{i}">{html.escape(label)}</label></div>'
            for i, (v, label) in enumerate(choices)
        )
        target = html.escape(request.query_params.get("post_login_redirect_uri") or PORTAL_PATH)
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Development sign-in</title>
<link rel="stylesheet" href="{PORTAL_PATH}static/app.css"></head><body><main class="signin">
<h1>Development sign-in</h1><p class="note">Local only: in Azure, App Service Authentication signs people in
with Entra ID and the app roles {ADMIN_ROLE} / {PARTNER_ROLE_PREFIX}&lt;partner&gt; decide what they see.</p>
<form method="post" action="/.auth/login/dev"><fieldset><legend>Sign in as</legend>{radios}</fieldset>
<div class="field"><label for="name">Your name</label><input type="text" id="name" name="name" value="dev-admin@contoso.test"
autocomplete="username"></div><input type="hidden" name="redirect" value="{target}">
<p><button type="submit" id="sign-in">Sign in</button></p></form></main></body></html>"""
        return HTMLResponse(page, headers={"Content-Security-Policy": _SIGN_IN_CSP})

    async def sign_in(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        who = str(form.get("as") or "admin")
        name = str(form.get("name") or "dev user")[:100].replace("|", "")
        if who != "admin" and who.removeprefix("partner:") not in self.settings.profiles.partners:
            return HTMLResponse("unknown partner", status_code=400)
        redirect = str(form.get("redirect") or PORTAL_PATH)
        if not redirect.startswith("/") or redirect.startswith("//"):
            redirect = PORTAL_PATH  # never an open redirect
        response = RedirectResponse(redirect, status_code=303)
        response.set_cookie(COOKIE, self._sign(f"{who}|{name}"), httponly=True, samesite="strict", path="/")
        return response

    async def sign_out(self, request: Request) -> Response:
        response = RedirectResponse("/.auth/login/aad", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    def _principal_header(self, request: Request) -> str | None:
        value = self._unsign(request.cookies.get(COOKIE, ""))
        if not value:
            return None
        who, _, name = value.partition("|")
        role = ADMIN_ROLE if who == "admin" else PARTNER_ROLE_PREFIX + who.removeprefix("partner:")
        return encode_principal(name, [role])

    # -- the function app's HTTP trigger ------------------------------------------------------------------------
    async def portal(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if not k.lower().startswith(HEADER)}
        principal = self._principal_header(request)
        if principal:
            headers[HEADER] = principal
        req = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=headers,
            params=dict(request.query_params),
            route_params={"path": request.path_params.get("path", "")},
            body=await request.body(),
        )
        answer = await run_in_threadpool(portal.main, req, self.runtime, development_sign_in=True)
        headers = dict(answer.headers)
        if "content-type" not in {k.lower() for k in headers}:  # as the Functions worker adds it
            kind = answer.mimetype
            headers["content-type"] = f"{kind}; charset={answer.charset}" if kind.startswith("text/") else kind
        return Response(answer.get_body(), status_code=answer.status_code, headers=headers)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> PortalFront:
        allow_portal_uploads(self.settings, self.origin)
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="portal-front", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the portal front did not start on {self.origin}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> PortalFront:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def sign_in_url(front_url: str) -> str:
    parts = urlsplit(front_url)
    return f"{parts.scheme}://{parts.netloc}/.auth/login/aad"
