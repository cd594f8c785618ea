"""Autopilot import and device contract, driven only through the real msgraph-sdk client."""

import base64
import json

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from msgraph.generated.device_management.imported_windows_autopilot_device_identities.imported_windows_autopilot_device_identities_request_builder import (  # noqa: E501
    ImportedWindowsAutopilotDeviceIdentitiesRequestBuilder as ImportsBuilder,
)
from msgraph.generated.device_management.windows_autopilot_device_identities.item.update_device_properties.update_device_properties_post_request_body import (  # noqa: E501
    UpdateDevicePropertiesPostRequestBody,
)
from msgraph.generated.device_management.windows_autopilot_device_identities.windows_autopilot_device_identities_request_builder import (  # noqa: E501
    WindowsAutopilotDeviceIdentitiesRequestBuilder as DevicesBuilder,
)
from msgraph.generated.models.imported_windows_autopilot_device_identity_import_status import (
    ImportedWindowsAutopilotDeviceIdentityImportStatus as Status,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.windows_autopilot_device_identity import WindowsAutopilotDeviceIdentity
from msgraph_core import PageIterator

from registrar.synthetic import build_hash
from tests.emulator.sdk import identity, import_many, send_raw

pytestmark = pytest.mark.anyio
IMPORTS = "deviceManagement/importedWindowsAutopilotDeviceIdentities"


async def _imports(client):
    return (await client.device_management.imported_windows_autopilot_device_identities.get()).value


async def _all_imports(client):
    first = await client.device_management.imported_windows_autopilot_device_identities.get()
    items = []
    iterator = PageIterator(first, client.request_adapter)
    await iterator.iterate(lambda item: items.append(item) or True)
    return items


async def _by_serial(client, serial):
    return {i.serial_number: i for i in await _all_imports(client)}[serial]


async def test_import_stays_unknown_until_processed_then_registers(client, emulator):
    created = await client.device_management.imported_windows_autopilot_device_identities.post(
        identity("PF-1", build_hash("PF-1", "Lenovo", "ThinkPad X1"), group_tag="Sales")
    )
    assert created.state.device_import_status == Status.Unknown
    assert created.state.device_error_code == 0 and created.group_tag == "Sales"
    emulator.ctl.advance(50)  # leaves wall-clock slack: the first SDK call is slow to warm up
    assert (await _by_serial(client, "PF-1")).state.device_import_status == Status.Unknown
    emulator.ctl.advance(11)
    done = await client.device_management.imported_windows_autopilot_device_identities.by_imported_windows_autopilot_device_identity_id(
        created.id
    ).get()  # noqa: E501
    assert done.state.device_import_status == Status.Complete
    registration_id = done.state.device_registration_id
    device = await client.device_management.windows_autopilot_device_identities.by_windows_autopilot_device_identity_id(
        registration_id
    ).get()  # noqa: E501
    assert isinstance(device, WindowsAutopilotDeviceIdentity)
    assert (device.serial_number, device.manufacturer, device.model, device.group_tag) == (
        "PF-1",
        "Lenovo",
        "ThinkPad X1",
        "Sales",
    )
    assert device.enrollment_state.value == "notContacted"
    assert device.azure_active_directory_device_id


async def test_import_action_marks_duplicate_hashes_in_one_call(client, emulator):
    records = await import_many(client, [identity("PF-1"), identity("PF-2"), identity("PF-1")])
    assert [r.serial_number for r in records] == ["PF-1", "PF-2", "PF-1"]
    assert len({r.import_id for r in records}) == 1
    emulator.ctl.advance(61)
    states = [
        (i.serial_number, i.state.device_import_status, i.state.device_error_name) for i in await _all_imports(client)
    ]
    assert sorted(states, key=str) == sorted(
        [
            ("PF-1", Status.Complete, ""),
            ("PF-2", Status.Complete, ""),
            ("PF-1", Status.Error, "ZtdDeviceDuplicated"),
        ],
        key=str,
    )


async def test_806_when_the_device_is_already_registered(client, emulator):
    emulator.ctl.seed(devices=[{"serial": "PF-OLD"}])
    await client.device_management.imported_windows_autopilot_device_identities.post(identity("PF-OLD"))
    await client.device_management.imported_windows_autopilot_device_identities.post(identity("PF-NEW"))
    emulator.ctl.advance(61)
    await client.device_management.imported_windows_autopilot_device_identities.post(identity("PF-NEW"))  # again
    emulator.ctl.advance(61)
    old = await _by_serial(client, "PF-OLD")
    assert (old.state.device_import_status, old.state.device_error_code, old.state.device_error_name) == (
        Status.Error,
        806,
        "ZtdDeviceAlreadyAssigned",
    )
    outcomes = sorted(i.state.device_error_code for i in await _all_imports(client) if i.serial_number == "PF-NEW")
    assert outcomes == [0, 806]


async def test_808_when_another_organisation_owns_the_serial(client, emulator):
    emulator.ctl.seed(otherTenantSerials=["PF-THEIRS"])
    await client.device_management.imported_windows_autopilot_device_identities.post(identity("PF-THEIRS"))
    emulator.ctl.advance(61)
    record = await _by_serial(client, "PF-THEIRS")
    assert (record.state.device_error_code, record.state.device_error_name) == (808, "ZtdDeviceAssignedToOtherTenant")
    assert not (await client.device_management.windows_autopilot_device_identities.get()).value


@pytest.mark.parametrize(
    "hash_text",
    [
        base64.b64encode(b"not a hardware hash at all").decode(),
        build_hash("PF-1", include_manufacturer=False),
        build_hash("PF-1")[:400] + "====",
    ],
)
async def test_invalid_hardware_hash_errors_after_processing(client, emulator, hash_text):
    await client.device_management.imported_windows_autopilot_device_identities.post(identity("PF-1", hash_text))
    emulator.ctl.advance(61)
    record = await _by_serial(client, "PF-1")
    assert (record.state.device_import_status, record.state.device_error_name) == (
        Status.Error,
        "InvalidZtdHardwareHash",
    )


@pytest.mark.parametrize("text", ["T0EqAgEAHgAKAAAAXVgBAAoAAAD0ZQ", "@@@@not-base64"])
async def test_unpadded_or_invalid_base64_is_a_400_edm_binary_error(client, text):
    body = json.dumps({"serialNumber": "PF-1", "hardwareIdentifier": text}).encode()
    with pytest.raises(ODataError) as info:
        await send_raw(client, Method.POST, "/" + IMPORTS, body)
    error = info.value
    assert error.response_status_code == 400
    assert "Edm.Binary" in error.error.message and error.error.code == "BadRequest"
    assert error.error.inner_error.request_id


async def test_list_pages_with_next_link_and_delete(client, emulator):
    await import_many(client, [identity(f"PF-{n}") for n in range(7)])
    first = await client.device_management.imported_windows_autopilot_device_identities.get()
    assert len(first.value) == 3 and first.odata_next_link
    items = await _all_imports(client)
    assert sorted(i.serial_number for i in items) == [f"PF-{n}" for n in range(7)]
    config = RequestConfiguration(
        query_parameters=ImportsBuilder.ImportedWindowsAutopilotDeviceIdentitiesRequestBuilderGetQueryParameters(top=5)
    )  # noqa: E501
    assert len((await client.device_management.imported_windows_autopilot_device_identities.get(config)).value) == 5
    builder = client.device_management.imported_windows_autopilot_device_identities
    await builder.by_imported_windows_autopilot_device_identity_id(items[0].id).delete()
    assert len(await _all_imports(client)) == 6
    with pytest.raises(ODataError) as info:
        await builder.by_imported_windows_autopilot_device_identity_id(items[0].id).get()
    assert info.value.response_status_code == 404


def _filter(expression):
    query = DevicesBuilder.WindowsAutopilotDeviceIdentitiesRequestBuilderGetQueryParameters(filter=expression)
    return RequestConfiguration(query_parameters=query)


async def _registered(client, emulator, serials):
    await import_many(client, [identity(s) for s in serials])
    emulator.ctl.advance(61)


async def test_devices_filter_contains_and_refuse_eq(client, emulator):
    await _registered(client, emulator, ["AB-100", "AB-1001", "CD 200"])
    devices = client.device_management.windows_autopilot_device_identities
    found = await devices.get(_filter("contains(serialNumber,'AB-100')"))
    assert sorted(d.serial_number for d in found.value) == ["AB-100", "AB-1001"]  # contains, so compare exactly after
    spaced = await devices.get(_filter("contains(serialNumber,'CD 200')"))
    assert [d.serial_number for d in spaced.value] == ["CD 200"]
    with pytest.raises(ODataError) as info:
        await devices.get(_filter("serialNumber eq 'AB-100'"))
    assert info.value.response_status_code == 400


async def test_device_get_update_properties_and_delete(client, emulator):
    await _registered(client, emulator, ["PF-1"])
    emulator.ctl.advance(31)  # the Entra object appears
    devices = client.device_management.windows_autopilot_device_identities
    (device,) = (await devices.get()).value
    body = UpdateDevicePropertiesPostRequestBody(group_tag="Kiosk", display_name="KIOSK-01")
    await devices.by_windows_autopilot_device_identity_id(device.id).update_device_properties.post(body)
    updated = await devices.by_windows_autopilot_device_identity_id(device.id).get()
    assert (updated.group_tag, updated.display_name) == ("Kiosk", "KIOSK-01")
    (entra,) = emulator.ctl.state()["entra"]
    assert "[OrderId]:Kiosk" in entra["physicalIds"] and f"[ZTDId]:{device.id}" in entra["physicalIds"]
    await devices.by_windows_autopilot_device_identity_id(device.id).delete()
    assert not (await devices.get()).value


async def test_beta_adds_profile_assignment_status(beta_client, client, emulator):
    await _registered(client, emulator, ["PF-1"])
    (device,) = (await beta_client.device_management.windows_autopilot_device_identities.get()).value
    assert device.additional_data["deploymentProfileAssignmentStatus"] == "notAssigned"
    assert str(device.additional_data["azureAdDeviceId"]) == device.azure_active_directory_device_id


async def test_enrollment_is_visible_after_the_control_api_enrolls(client, emulator):
    await _registered(client, emulator, ["PF-1"])
    emulator.ctl.enroll("PF-1", "2026-11-20T10:00:00Z")
    (device,) = (await client.device_management.windows_autopilot_device_identities.get()).value
    assert device.enrollment_state.value == "enrolled"
    assert device.last_contacted_date_time.isoformat().startswith("2026-11-20T10:00:00")


def test_a_body_property_the_v1_schema_lacks_is_refused_as_graph_does(emulator):
    import httpx

    body = {"importedWindowsAutopilotDeviceIdentities": [{"serialNumber": "X-1", "hardwareHash": "AAAA"}]}
    answer = httpx.post(
        f"{emulator.url}/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities/import",
        headers={"Authorization": "Bearer t"},
        json=body,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "Could not find a property named 'hardwareHash' on type "
        "'microsoft.graph.importedWindowsAutopilotDeviceIdentity'."
    )
