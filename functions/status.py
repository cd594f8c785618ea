"""HTTP status API (function-key auth): devices and uploads. Partners call their own functions, whose keys
only they hold, and see only their own devices."""

from __future__ import annotations

import json

import azure.functions as func

from shared.runtime import Runtime, runtime
from shared.status_api import BadQuery, get_upload, list_devices


def _json(body: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def devices(req: func.HttpRequest, partner: str | None = None, rt: Runtime | None = None) -> func.HttpResponse:
    rt = rt or runtime()
    base_url = req.url.split("?", 1)[0]
    try:
        return _json(list_devices(rt.store, dict(req.params), base_url, partner))
    except BadQuery as error:
        return _json({"error": {"code": "BadQuery", "message": str(error)}}, 400)


def upload(req: func.HttpRequest, partner: str | None = None, rt: Runtime | None = None) -> func.HttpResponse:
    rt = rt or runtime()
    upload_id = req.route_params.get("upload_id", "")
    found = get_upload(rt.store, upload_id, partner)
    if found is None:
        return _json({"error": {"code": "NotFound", "message": f"no upload {upload_id!r}"}}, 404)
    return _json(found)
