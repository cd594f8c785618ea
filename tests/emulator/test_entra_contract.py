"""Entra devices, groups, membership, $batch, sync, throttling, faults and auth, through the real SDK."""

import httpx
import pytest
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.devices.devices_request_builder import DevicesRequestBuilder
from msgraph.generated.groups.item.members.members_request_builder import MembersRequestBuilder
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph_core import PageIterator
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

from shared.graph.batch import post_batch
from tests.emulator.sdk import all_pages, identity, import_many, no_retry, sync

pytestmark = pytest.mark.anyio


async def _register(client, emulator, serials, *, visible=True):
    await import_many(client, [identity(s) for s in serials])
    emulator.ctl.advance(61)
    if visible:
        emulator.ctl.advance(31)
    first = await client.device_management.windows_autopilot_device_identities.get()
    return {d.serial_number: d for d in await all_pages(client, first)}


async def _entra(client, device_id):
    query = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(filter=f"deviceId eq '{device_id}'")
    return (await client.devices.get(RequestConfiguration(query_parameters=query))).value


def _ref(emulator, object_id):
    return ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}")


async def _group(client, name, rule=None):
    group = Group(
        display_name=name,
        mail_enabled=False,
        security_enabled=True,
        mail_nickname=name,
        group_types=["DynamicMembership"] if rule else [],
        membership_rule=rule,
    )
    return await client.groups.post(group)


async def test_entra_device_appears_after_a_delay_with_physical_ids(client, emulator):
    devices = await _register(client, emulator, ["PF-1"], visible=False)
    device = devices["PF-1"]
    assert await _entra(client, device.azure_active_directory_device_id) == []  # eventual consistency
    emulator.ctl.advance(31)
    (entra,) = await _entra(client, device.azure_active_directory_device_id)
    assert entra.device_id == device.azure_active_directory_device_id and entra.id != entra.device_id
    assert f"[ZTDId]:{device.id}" in entra.physical_ids
    fetched = await client.devices.by_device_id(entra.id).get()
    assert fetched.display_name == "PF-1"


async def test_group_membership_add_remove_and_errors(client, emulator):
    devices = await _register(client, emulator, ["PF-1", "PF-2"])
    (entra,) = await _entra(client, devices["PF-1"].azure_active_directory_device_id)
    group = await _group(client, "Autopilot-Standard")
    assert (await client.groups.by_group_id(group.id).get()).display_name == "Autopilot-Standard"
    members = client.groups.by_group_id(group.id).members
    await members.ref.post(_ref(emulator, entra.id))
    assert [m.id for m in (await members.get()).value] == [entra.id]
    with pytest.raises(ODataError) as again:
        await members.ref.post(_ref(emulator, entra.id))
    assert again.value.response_status_code == 400
    with pytest.raises(ODataError) as unknown:
        await members.ref.post(_ref(emulator, "00000000-0000-0000-0000-000000000001"))
    assert unknown.value.response_status_code == 404
    await members.by_directory_object_id(entra.id).ref.delete()
    assert (await members.get()).value == []


async def test_patch_members_odata_bind_adds_up_to_20_all_or_nothing(client, emulator):
    """group-post-members: "Add multiple members to a group in a single request", up to 20."""
    serials = [f"PB-{n}" for n in range(3)]
    devices = await _register(client, emulator, serials)
    ids = [(await _entra(client, devices[s].azure_active_directory_device_id))[0].id for s in serials]
    group = await _group(client, "Autopilot-Bind")
    url = f"{emulator.url}/v1.0/groups/{group.id}"
    headers = {"Authorization": "Bearer test"}

    def bind(object_ids):
        refs = [f"https://graph.microsoft.com/v1.0/directoryObjects/{o}" for o in object_ids]
        return httpx.patch(url, json={"members@odata.bind": refs}, headers=headers)

    assert bind(ids[:2]).status_code == 204
    again = bind(ids[1:])  # ids[1] is a member already: nothing added
    assert again.status_code == 400 and "already exist" in again.json()["error"]["message"]
    members = client.groups.by_group_id(group.id).members
    assert sorted(m.id for m in (await members.get()).value) == sorted(ids[:2])
    assert bind([ids[2], "00000000-0000-0000-0000-000000000001"]).status_code == 404
    assert bind([ids[2]] * 21).status_code == 400  # more than 20
    renamed = httpx.patch(url, json={"displayName": "x", "members@odata.bind": []}, headers=headers)
    assert renamed.status_code == 400
    assert bind([ids[2]]).status_code == 204
    assert len((await members.get()).value) == 3


async def test_members_list_pages_and_selects(client, emulator):
    devices = await _register(client, emulator, [f"PF-{n}" for n in range(5)])
    group = await _group(client, "G")
    for device in devices.values():
        (entra,) = await _entra(client, device.azure_active_directory_device_id)
        await client.groups.by_group_id(group.id).members.ref.post(_ref(emulator, entra.id))
    query = MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(select=["id", "deviceId"])
    first = await client.groups.by_group_id(group.id).members.get(RequestConfiguration(query_parameters=query))
    assert len(first.value) == 3 and first.odata_next_link
    assert first.value[0].additional_data.get("displayName") is None  # $select honoured
    seen = []
    await PageIterator(first, client.request_adapter).iterate(lambda m: seen.append(m.id) or True)
    assert len(set(seen)) == 5


async def test_dynamic_group_computes_members_and_refuses_manual_changes(client, emulator):
    devices = await _register(client, emulator, ["PF-1", "PF-2"])
    group = await _group(client, "Kiosks", rule='(device.devicePhysicalIds -any (_ -eq "[OrderId]:Kiosk"))')
    members = client.groups.by_group_id(group.id).members
    assert (await members.get()).value == []
    from msgraph.generated.device_management.windows_autopilot_device_identities.item.update_device_properties.update_device_properties_post_request_body import (  # noqa: E501
        UpdateDevicePropertiesPostRequestBody,
    )

    device = devices["PF-1"]
    await client.device_management.windows_autopilot_device_identities.by_windows_autopilot_device_identity_id(
        device.id
    ).update_device_properties.post(UpdateDevicePropertiesPostRequestBody(group_tag="Kiosk"))
    (entra,) = await _entra(client, device.azure_active_directory_device_id)
    assert [m.id for m in (await members.get()).value] == [entra.id]
    with pytest.raises(ODataError) as refused:
        await members.ref.post(_ref(emulator, entra.id))
    assert refused.value.response_status_code == 400
    all_ztd = await _group(client, "All Autopilot", rule='(device.devicePhysicalIds -any (_ -contains "[ZTDId]"))')
    assert len((await client.groups.by_group_id(all_ztd.id).members.get()).value) == 2


async def test_manual_membership_change_through_the_control_api(client, emulator):
    await _register(client, emulator, ["PF-1"])
    group = await _group(client, "Other profile")
    emulator.ctl.change_membership(group.id, "PF-1", "add")
    assert len((await client.groups.by_group_id(group.id).members.get()).value) == 1


async def test_batch_runs_each_request_through_the_same_handlers(client, emulator):
    devices = await _register(client, emulator, ["PF-1", "PF-2"])
    group = await _group(client, "Batch")
    items = []
    for n, device in enumerate(devices.values()):
        (entra,) = await _entra(client, device.azure_active_directory_device_id)
        items.append(_add_item(str(n), group.id, entra.id))
    items.append(_add_item("missing", "no-such-group", "x"))
    answers = await post_batch(client, items)  # the product's own $batch
    statuses = {key: item["status"] for key, item in answers.items()}
    assert statuses.pop("missing") == 404
    assert answers["missing"]["body"]["error"]["code"]  # the item's own error body comes back
    assert sorted(statuses.values()) == [204, 204]
    assert len((await client.groups.by_group_id(group.id).members.get()).value) == 2
    counters = emulator.ctl.counters()["requests"]
    assert counters["POST groups.members.add 204"] == 2


def _add_item(item_id: str, group_id: str, object_id: str) -> dict:
    body = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}
    return {
        "id": item_id,
        "method": "POST",
        "url": f"/groups/{group_id}/members/$ref",
        "body": body,
        "headers": {"Content-Type": "application/json"},
    }


def _raw_batch(emulator, requests: list) -> httpx.Response:
    return httpx.post(f"{emulator.url}/v1.0/$batch", headers={"Authorization": "Bearer t"}, json={"requests": requests})


async def test_batch_refuses_more_than_20_requests(client, emulator):
    ok = _raw_batch(emulator, [{"id": str(n), "method": "GET", "url": "/devices"} for n in range(20)])
    assert ok.status_code == 200 and len(ok.json()["responses"]) == 20
    content = BatchRequestContent()
    for n in range(20):
        content.add_request(
            str(n), BatchRequestItem(request_information=client.devices.to_get_request_information(), id=str(n))
        )
    with pytest.raises(RuntimeError):  # the SDK enforces Graph's limit itself...
        content.add_request(
            "20", BatchRequestItem(request_information=client.devices.to_get_request_information(), id="20")
        )
    # ...and the emulator enforces it for clients that do not.
    raw = _raw_batch(emulator, [{"id": str(n), "method": "GET", "url": "/devices"} for n in range(21)])
    assert raw.status_code == 400 and "maximum" in raw.json()["error"]["message"]


@pytest.mark.parametrize(
    ("requests", "complaint"),
    [
        ([{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/devices"}], "relative"),
        ([{"id": "1", "method": "GET", "url": "/v1.0/devices"}], "relative"),
        ([{"id": "1", "method": "GET", "url": "/devices"}, {"id": "1", "method": "GET", "url": "/groups"}], "unique"),
        ([{"id": "1", "method": "GET", "url": "/devices", "depends_on": []}], "unknown property 'depends_on'"),
        ([{"id": "1", "method": "GET", "url": "/devices", "dependsOn": ["2"]}], "dependsOn"),
        ([{"id": "a", "method": "GET", "url": "/devices"}, {"id": "A", "method": "GET", "url": "/groups"}], "unique"),
        ([{"id": "1", "method": "POST", "url": "/groups", "body": {"displayName": "x"}}], "Content-Type"),
    ],
)
async def test_a_batch_graph_would_refuse_fails_as_a_whole(emulator, requests, complaint):
    """JSON batching: relative URLs only, ids unique ("Not case-sensitive"), a Content-Type header with every
    body, dependsOn spelt and used as documented. msgraph-core's
    BatchRequestContent writes ``depends_on`` (and older versions absolute URLs), so the product builds its
    own items."""
    answer = _raw_batch(emulator, requests)
    assert answer.status_code == 400 and complaint in answer.json()["error"]["message"]


@pytest.mark.parametrize("answers_424", [True, False])
async def test_a_batch_with_a_throttled_item_keeps_every_item_answer(client, emulator, answers_424):
    """throttling: "The batch itself fails with a status code of 424 (Failed Dependency)" when an item is
    throttled; json-batching: a parseable batch answers 200. Either way the product reads each item's answer,
    and an item applied before the throttled one counts as done."""
    devices = await _register(client, emulator, ["PT-1", "PT-2", "PT-3"])
    group = await _group(client, "Throttled-Batch")
    entra = [(await _entra(client, d.azure_active_directory_device_id))[0].id for d in devices.values()]
    # two Entra writes in any 150 s: the third item of the batch is throttled
    emulator.ctl.configure(throttle={"enabled": True, "entra_app_writes": 2, "batch_424_when_throttled": answers_424})
    raw = _raw_batch(emulator, [_add_item(str(n), group.id, object_id) for n, object_id in enumerate(entra)])
    assert raw.status_code == (424 if answers_424 else 200)
    assert [r["status"] for r in raw.json()["responses"]] == [204, 204, 429]
    assert int(raw.json()["responses"][2]["headers"]["Retry-After"]) >= 1
    emulator.ctl.configure(throttle={"enabled": True, "entra_app_writes": 4})  # room for two more writes
    emulator.ctl.advance(151)
    items = [_add_item("r", group.id, entra[2]), _add_item("again", group.id, entra[0])]
    answers = await post_batch(client, items)  # the product's own $batch
    assert answers["r"]["status"] == 204 and answers["again"]["status"] == 400  # already a member
    emulator.ctl.advance(151)
    third = await _group(client, "Throttled-Batch-2")  # a write too: it goes before the limit shrinks
    emulator.ctl.configure(throttle={"enabled": True, "entra_app_writes": 1})
    emulator.ctl.advance(151)
    answers = await post_batch(client, [_add_item(str(n), third.id, o) for n, o in enumerate(entra[:2])])
    assert [answers[str(n)]["status"] for n in range(2)] == [204, 429]  # a 424 answer, read item by item
    assert len((await client.groups.by_group_id(third.id).members.get()).value) == 1


async def test_the_sdk_batch_content_is_refused_because_it_writes_depends_on(client, emulator):
    content = BatchRequestContent()
    content.add_request("1", BatchRequestItem(request_information=client.devices.to_get_request_information(), id="1"))
    with pytest.raises(APIError) as refused:  # msgraph-core maps no error class for $batch
        await client.batch.post(content)
    assert refused.value.response_status_code == 400


async def test_sync_exists_only_on_beta(client, emulator):
    with pytest.raises(ODataError) as missing:
        await sync(client, version="v1.0")
    assert missing.value.response_status_code == 400
    assert "windowsAutopilotSettings" in missing.value.error.message
    await sync(client)  # /beta


async def test_sync_204_then_409_while_running_then_429_within_10_minutes(client, emulator):
    await sync(client)
    with pytest.raises(ODataError) as running:
        await sync(client)
    assert running.value.response_status_code == 409
    emulator.ctl.advance(120)
    with pytest.raises(ODataError) as early:
        await sync(client)
    assert early.value.response_status_code == 429
    assert int(early.value.response_headers["Retry-After"]) > 400
    emulator.ctl.advance(500)
    await sync(client)


async def test_burst_gets_429_with_retry_after_and_a_patient_client_gets_through(client, emulator):
    # 3 writes in any 6 s: the 4th of a quick burst waits for the 1st to age, about 6 s
    emulator.ctl.configure(throttle={"enabled": True, "app_writes": 3, "window_seconds": 6, "intune_retry_after": True})
    from msgraph.generated.device_management.imported_windows_autopilot_device_identities.imported_windows_autopilot_device_identities_request_builder import (  # noqa: E501
        ImportedWindowsAutopilotDeviceIdentitiesRequestBuilder as Builder,
    )

    builder = client.device_management.imported_windows_autopilot_device_identities
    for n in range(3):
        await builder.post(identity(f"PF-{n}"))
    config = RequestConfiguration(options=no_retry())
    with pytest.raises(ODataError) as throttled:
        await builder.post(identity("PF-3"), config)
    assert throttled.value.response_status_code == 429
    assert throttled.value.error.code == "TooManyRequests"
    assert 1 <= int(throttled.value.response_headers["Retry-After"]) <= 6
    await builder.post(identity("PF-3"))  # the SDK's retry handler honours Retry-After
    assert len((await builder.get()).value) == 3  # page size 3
    counters = emulator.ctl.counters()
    assert counters["throttled"] >= 2
    assert counters["requests"]["POST importedIdentities.create 201"] == 4
    assert Builder  # imported to show the typed builder is the one in use


async def test_entra_charges_each_request_its_documented_resource_units(client, emulator):
    """throttling-limits, identity and access: GET groups/{id}/members costs 3 units, $select 1 less, $top
    under 20 1 less, never below 1; other paths 1; a write costs one write. The units are in x-ms-resource-unit."""
    group = await _group(client, "Autopilot-Units")
    # 7 units per 600 s: nothing refills while the test runs
    emulator.ctl.configure(throttle={"enabled": True, "entra_app_requests": 7, "entra_requests_window_seconds": 600})
    headers = {"Authorization": "Bearer units"}
    members = f"{emulator.url}/v1.0/groups/{group.id}/members"

    def units(url, **query):
        response = httpx.get(url, params=query, headers=headers)
        return response.status_code, response.headers.get("x-ms-resource-unit")

    assert units(members) == (200, "3")
    assert units(members, **{"$select": "id"}) == (200, "2")
    assert units(members, **{"$select": "id", "$top": "5"}) == (200, "1")
    assert units(f"{emulator.url}/v1.0/devices", **{"$select": "id"}) == (200, "1")  # never below 1
    assert units(members)[0] == 429  # 7 units spent: a 3-unit read no longer fits
    assert units(f"{emulator.url}/v1.0/groups/{group.id}")[0] == 429  # and no 1-unit read either


def test_intune_429s_come_without_retry_after_by_default_and_429s_come_below_the_limits_too(emulator):
    """Intune's 429s as users report them: no header, "RetryAfter": null in the message (the strict default);
    and a loaded Graph answers 429 "even when the following limits aren't reached" (throttling-limits)."""
    headers = {"Authorization": "Bearer intune"}
    imports = f"{emulator.url}/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities"
    emulator.ctl.configure(throttle={"enabled": True, "app_requests": 1, "window_seconds": 600})
    assert httpx.get(imports, headers=headers).status_code == 200
    throttled = httpx.get(imports, headers=headers)
    assert throttled.status_code == 429 and "Retry-After" not in throttled.headers
    assert '"RetryAfter": null' in throttled.json()["error"]["message"]
    emulator.ctl.configure(throttle={"enabled": False}, faults={"rate_429": 1.0})
    loaded = httpx.get(f"{emulator.url}/v1.0/devices", headers=headers)
    assert loaded.status_code == 429 and int(loaded.headers["Retry-After"]) >= 1
    assert emulator.ctl.counters()["faults"]["429"] == 1


async def test_injected_faults_are_seeded_and_counted(client, emulator):
    emulator.ctl.configure(faults={"rate_500": 1.0})
    with pytest.raises(ODataError) as failed:
        await client.devices.get(RequestConfiguration(options=no_retry()))
    assert failed.value.response_status_code == 500
    emulator.ctl.configure(faults={"rate_500": 0.0, "rate_503": 0.5, "seed": 3})
    outcomes = []
    for _ in range(10):
        try:
            await client.devices.get(RequestConfiguration(options=no_retry()))
            outcomes.append(200)
        except ODataError as error:
            outcomes.append(error.response_status_code)
    assert set(outcomes) == {200, 503}
    assert emulator.ctl.counters()["faults"]["503"] == outcomes.count(503)


async def test_dropped_connection_and_latency(client, emulator):
    emulator.ctl.configure(faults={"drop_rate": 1.0})
    with pytest.raises(httpx.HTTPError):
        await client.devices.get(RequestConfiguration(options=no_retry()))
    emulator.ctl.configure(faults={"drop_rate": 0.0, "latency_ms": 300})
    import time

    start = time.perf_counter()
    await client.devices.get()
    assert time.perf_counter() - start >= 0.3


def test_graph_paths_require_a_bearer_token(emulator):
    response = httpx.get(f"{emulator.url}/v1.0/devices")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert httpx.get(f"{emulator.url}/_emulator/health").status_code == 200


async def test_a_token_without_the_documented_permission_is_refused_with_403(emulator):
    from registrar.emulators.graph.permissions import PRODUCT_GRANTS

    emulator.ctl.configure(
        app_roles={
            "dev.narrow": ["GroupMember.ReadWrite.All", "Device.Read.All"],
            "dev.autopilot-registrar-dev": sorted(PRODUCT_GRANTS),
        }
    )
    group = "44444444-4444-4444-8444-444444444444"
    emulator.ctl.seed(groups=[{"id": group, "displayName": "G"}])
    body = {"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/x"}
    added = httpx.post(
        f"{emulator.url}/v1.0/groups/{group}/members/$ref", headers={"Authorization": "Bearer dev.narrow"}, json=body
    )
    assert added.status_code == 403
    assert added.json()["error"]["code"] == "Authorization_RequestDenied"
    assert "Device.ReadWrite.All" in added.json()["error"]["message"]
    created = httpx.post(  # the product's own token may not create groups: it is never granted Group.Create
        f"{emulator.url}/v1.0/groups",
        headers={"Authorization": "Bearer dev.autopilot-registrar-dev"},
        json={"displayName": "x", "mailEnabled": False, "securityEnabled": True, "mailNickname": "x"},
    )
    assert created.status_code == 403
