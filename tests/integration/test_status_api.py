"""The HTTP status API through func.HttpRequest: filters, paging, uploads, and partner isolation."""

import json

import azure.functions as func
import pytest

from functions import status
from tests.helpers import csv_bytes, portal_row
from tests.integration.conftest import upload

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
BASE = "https://registrar.example/api/devices"


def _get(handler, url=BASE, params=None, route_params=None, **kw):
    request = func.HttpRequest("GET", url, params=params or {}, route_params=route_params or {}, body=b"")
    response = handler(request, **kw)
    return response.status_code, json.loads(response.get_body())


@pytest.fixture
async def fleet(host, settings):
    upload(settings, "device-uploads", "standard/a.csv", csv_bytes([portal_row(f"AD-{n}") for n in range(3)]))
    upload(settings, "partner-contoso", "standard/p.csv", csv_bytes([portal_row("PA-1"), portal_row("PA-2")]))
    upload(settings, "device-uploads", "kiosk/k.csv", csv_bytes([portal_row("KI-1")]))
    for _ in range(4):
        await host.step()
    return host


async def test_filters_and_paging(fleet):
    rt = fleet.runtime
    code, body = _get(status.devices, params={"profile": "standard", "top": "2"}, rt=rt)
    assert code == 200 and body["count"] == 2
    assert [d["serial"] for d in body["value"]] == ["AD-0", "AD-1"]
    assert "cursor=" in body["nextLink"] and "profile=standard" in body["nextLink"]
    _, second = _get(status.devices, params={"profile": "standard", "top": "2", "cursor": body["cursor"]}, rt=rt)
    _, third = _get(status.devices, params={"profile": "standard", "top": "2", "cursor": second["cursor"]}, rt=rt)
    assert [d["serial"] for d in second["value"] + third["value"]] == ["AD-2", "PA-1", "PA-2"]
    assert "nextLink" not in third
    _, ready = _get(status.devices, params={"state": "Ready for user"}, rt=rt)
    assert ready["count"] == 6 and ready["value"][0]["state"] == "Ready for user"
    first = ready["value"][0]
    assert first["lastSeen"] == "never" and first["registeredAt"] and first["age"].endswith("min")
    assert "assignedUser" in first and first["upload"]["line"] >= 1
    _, found = _get(status.devices, params={"serial": "ad-"}, rt=rt)  # a serial's start, any case
    assert [d["serial"] for d in found["value"]] == ["AD-0", "AD-1", "AD-2"]
    code, error = _get(status.devices, params={"state": "bogus"}, rt=rt)
    assert code == 400 and "unknown state" in error["error"]["message"]
    code, error = _get(status.devices, params={"cursor": "not-a-cursor"}, rt=rt)
    assert code == 400 and "cursor" in error["error"]["message"]


async def test_partner_sees_only_its_own_devices_and_uploads(fleet):
    rt = fleet.runtime
    _, mine = _get(status.devices, partner="contoso", rt=rt)
    assert [d["serial"] for d in mine["value"]] == ["PA-1", "PA-2"]
    _, still_mine = _get(status.devices, params={"partner": ""}, partner="contoso", rt=rt)  # cannot widen
    assert still_mine["count"] == 2
    _, not_theirs = _get(status.devices, params={"partner": "fabrikam"}, partner="contoso", rt=rt)
    assert [d["partner"] for d in not_theirs["value"]] == ["contoso", "contoso"]
    admin_upload = next(u for u in rt.store.all_uploads() if u.container == "device-uploads")
    partner_upload = next(u for u in rt.store.all_uploads() if u.container == "partner-contoso")
    code, _ = _get(status.upload, route_params={"upload_id": admin_upload.upload_id}, partner="contoso", rt=rt)
    assert code == 404
    code, body = _get(status.upload, route_params={"upload_id": partner_upload.upload_id}, partner="contoso", rt=rt)
    assert code == 200 and [r["serial"] for r in body["rows"]] == ["PA-1", "PA-2"]
    code, body = _get(status.upload, route_params={"upload_id": admin_upload.upload_id}, rt=rt)
    assert code == 200 and body["counts"]["accepted"] >= 1
