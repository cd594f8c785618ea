"""The portal's API through its HTTP handler: who may call, what changes need, the retry action, history."""

import json

import azure.functions as func
import pytest

from functions import portal
from shared.portal.auth import encode_principal
from shared.states import DeviceState
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
ADMIN = {"x-ms-client-principal": encode_principal("ann@contoso.test", ["Registrar.Admin"])}
CONTOSO = {"x-ms-client-principal": encode_principal("pat@contoso.test", ["Registrar.Partner.contoso"])}


def call(rt, path, method="GET", headers=None, params=None, body=b"", trusted=True):
    request = func.HttpRequest(
        method, f"https://app.example/api/portal/{path}", headers=headers or {}, params=params or {},
        route_params={"path": path}, body=body,
    )  # fmt: skip
    response = portal.main(request, rt, development_sign_in=trusted)
    text = response.get_body()
    return response.status_code, (json.loads(text) if text[:1] in (b"{", b"[") else text), response.headers


async def test_access_csrf_retry_and_history(host, settings):
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row("PO-1"), portal_row("PO-2")]))
    for _ in range(3):
        await host.step()
    rt = host.runtime
    assert call(rt, "api/devices", headers=ADMIN, trusted=False)[0] == 401  # no Easy Auth, no entry
    assert call(rt, "api/devices")[0] == 401
    nobody = {"x-ms-client-principal": encode_principal("eve@contoso.test", [])}
    assert call(rt, "api/devices", headers=nobody)[0] == 403
    status, body, headers = call(rt, "api/devices", headers=ADMIN)
    assert status == 200 and [d["serial"] for d in body["value"]] == ["PO-1", "PO-2"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert call(rt, "api/devices", headers=CONTOSO)[1]["value"] == []

    def fail(record):
        record.state, record.error_code, record.message = DeviceState.FAILED, "graph_unavailable", "Graph down"

    rt.store.update_device("PO-1", fail)
    _, detail, _ = call(rt, "api/devices/PO-1", headers=ADMIN)
    assert detail["actions"] == ["retry"] and "Ready for user → Registration failed" in detail["timeline"][-1]["text"]
    assert call(rt, "api/devices/PO-1/retry", "POST", headers=ADMIN)[0] == 403  # no portal header: refused
    assert call(rt, "api/devices/PO-1/retry", "POST", headers=CONTOSO | {"x-registrar-portal": "1"})[0] == 404
    status, retried, _ = call(rt, "api/devices/PO-1/retry", "POST", headers=ADMIN | {"x-registrar-portal": "1"})
    assert status == 200 and retried["state"] == "Queued"
    assert call(rt, "api/devices/PO-2/retry", "POST", headers=ADMIN | {"x-registrar-portal": "1"})[0] == 409
    for _ in range(3):
        await host.step()
    _, detail, _ = call(rt, "api/devices/PO-1", headers=ADMIN)
    texts = "\n".join(e["text"] for e in detail["timeline"])
    assert "Retried by ann@contoso.test (admin)" in texts and "New registration attempt" in texts
    assert detail["state"] == "Ready for user" and detail["actions"] == []
