"""What a Graph request costs against the shared write budgets, and how budgets are configured."""

import json

import httpx
import pytest

from shared.budget import parse_budgets
from shared.config import ConfigError, load_settings
from shared.graph.budget_middleware import writes_of


def request(method: str, path: str, body: dict | None = None) -> httpx.Request:
    content = json.dumps(body).encode() if body is not None else None
    return httpx.Request(method, "https://graph.microsoft.com" + path, content=content)


def test_reads_cost_nothing_and_each_write_counts_against_its_service():
    assert writes_of(request("GET", "/v1.0/deviceManagement/windowsAutopilotDeviceIdentities")) == {}
    assert writes_of(request("POST", "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities/import")) == {
        "intune": 1
    }
    assert writes_of(request("DELETE", "/v1.0/groups/g/members/o/$ref")) == {"entra": 1}
    assert writes_of(request("POST", "/beta/deviceManagement/windowsAutopilotSettings/sync")) == {"intune": 1}


def test_a_batch_counts_each_write_item_and_not_its_reads():
    body = {
        "requests": [
            {"id": "1", "method": "POST", "url": "/groups/g/members/$ref"},
            {"id": "2", "method": "DELETE", "url": "/groups/h/members/o/$ref"},
            {"id": "3", "method": "GET", "url": "/devices?$filter=deviceId eq 'x'"},
            {
                "id": "4",
                "method": "POST",
                "url": "/deviceManagement/windowsAutopilotDeviceIdentities/a/updateDeviceProperties",
            },
        ]
    }
    assert writes_of(request("POST", "/v1.0/$batch", body)) == {"entra": 2, "intune": 1}


def test_budgets_are_parsed_and_a_bad_one_stops_start_up_with_its_setting_named():
    assert {n: (b.limit, b.window) for n, b in parse_budgets("intune=100/20, entra=3000/150").items()} == {
        "intune": (100, 20.0),
        "entra": (3000, 150.0),
    }
    assert parse_budgets("") == {}
    with pytest.raises(ConfigError, match="GRAPH_WRITE_BUDGET"):
        load_settings(
            {
                "REGISTRAR_PROFILES": '{"profiles": {"a": {"groupTag": "A", "groupId": "'
                + "1" * 8
                + "-1111-4111-8111-"
                + "1" * 12
                + '"}}}',
                "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                "GRAPH_WRITE_BUDGET": "intune=100",
            }
        )
