"""Users and their licences, through the real SDK: licenseDetails (delegated only, as its api-reference
table says), a user's assignedLicenses, the tenant's subscribedSkus; and the product's own reader."""

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

from registrar.emulators.graph.tenant import sku_id
from shared.graph.autopilot import GraphRefused
from shared.graph.client import graph_client
from shared.graph.credentials import AsyncDevelopmentCredential
from shared.licences import LicenceReader, UserNotFound

pytestmark = pytest.mark.anyio
ANN = "ann@contoso.com"


@pytest.fixture
def delegated(emulator):
    """A token that stands for a signed-in user (delegated permissions)."""
    emulator.ctl.configure(delegated_tokens=["dev.signed-in-admin"])
    return graph_client(AsyncDevelopmentCredential("signed-in-admin"), emulator.url + "/v1.0")


def _get(emulator, path, token="dev.contract-tests"):
    return httpx.get(emulator.url + "/v1.0" + path, headers={"Authorization": f"Bearer {token}"})


async def test_license_details_as_documented_for_a_signed_in_user(emulator, delegated):
    emulator.ctl.user(ANN, ["SPE_E3", "INTUNE_A"])
    details = (await delegated.users.by_user_id(ANN).license_details.get()).value
    assert sorted(d.sku_part_number for d in details) == ["INTUNE_A", "SPE_E3"]
    assert {str(d.sku_id) for d in details} == {sku_id("SPE_E3"), sku_id("INTUNE_A")}
    assert all(d.id and d.service_plans == [] for d in details)
    raw = _get(emulator, f"/users/{ANN}/licenseDetails", "dev.signed-in-admin").json()
    assert raw["@odata.context"].endswith("/licenseDetails")
    assert set(raw["value"][0]) == {"@odata.type", "id", "skuId", "skuPartNumber", "servicePlans"}
    by_id = _get(emulator, f"/users/{_user_id(emulator)}/licenseDetails", "dev.signed-in-admin")
    assert by_id.status_code == 200 and len(by_id.json()["value"]) == 2  # by object id as well as by UPN


def _user_id(emulator):
    return next(u["id"] for u in emulator.ctl.state()["users"] if u["userPrincipalName"] == ANN)


async def test_license_details_refuse_application_tokens(emulator, client):
    """user-list-licensedetails: Application "Not supported" - whatever roles the app holds."""
    emulator.ctl.user(ANN, ["SPE_E3"])
    with pytest.raises(ODataError) as error:
        await client.users.by_user_id(ANN).license_details.get()
    assert error.value.response_status_code == 403
    assert error.value.error.code == "Authorization_RequestDenied"


async def test_unknown_user_answers_404_as_graph_words_it(emulator, delegated, client):
    for call in (
        delegated.users.by_user_id("nobody@contoso.com").license_details.get(),
        client.users.by_user_id("nobody@contoso.com").get(),
    ):
        with pytest.raises(ODataError) as error:
            await call
        assert error.value.response_status_code == 404
        assert error.value.error.code == "Request_ResourceNotFound"
        assert error.value.error.message == (
            "Resource 'nobody@contoso.com' does not exist or one of its queried reference-property objects are not "
            "present."
        )


async def test_assigned_licenses_only_on_select_and_subscribed_skus(emulator, client):
    emulator.ctl.user(ANN, ["SPE_E3"])
    plain = await client.users.by_user_id(ANN).get()
    assert plain.user_principal_name == ANN and not plain.assigned_licenses  # not a default property
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["assignedLicenses"])
    user = await client.users.by_user_id(ANN).get(RequestConfiguration(query_parameters=query))
    assert [str(a.sku_id) for a in user.assigned_licenses] == [sku_id("SPE_E3")]
    skus = (await client.subscribed_skus.get()).value
    assert [(str(s.sku_id), s.sku_part_number, s.consumed_units) for s in skus] == [(sku_id("SPE_E3"), "SPE_E3", 1)]
    assert _get(emulator, f"/users/{ANN}?$select=licences").status_code == 400  # not a property of user
    assert _get(emulator, "/subscribedSkus?$filter=skuPartNumber eq 'SPE_E3'").status_code == 400  # $select only
    assert _get(emulator, "/users/$ann@contoso.com").status_code == 400  # user-get's "$" UPN tip


async def test_seeding_a_user_again_replaces_its_licences(emulator, client):
    emulator.ctl.user(ANN, [])
    reader = LicenceReader(client)
    assert await reader.assigned_sku_ids(ANN) == set()
    emulator.ctl.user(ANN, ["SPE_E3"])  # an admin assigns the licence
    assert await reader.assigned_sku_ids(ANN) == {sku_id("SPE_E3")}
    assert await reader.sku_part_numbers() == {sku_id("SPE_E3"): "SPE_E3"}
    with pytest.raises(UserNotFound):
        await reader.assigned_sku_ids("nobody@contoso.com")


async def test_the_products_token_may_read_users_and_skus_and_nothing_it_lacks(emulator):
    product = graph_client(AsyncDevelopmentCredential(), emulator.url + "/v1.0")  # exactly infra's grants
    emulator.ctl.user(ANN, ["SPE_E3"])
    reader = LicenceReader(product)
    assert await reader.assigned_sku_ids(ANN) == {sku_id("SPE_E3")}
    emulator.ctl.configure(app_roles={"dev.autopilot-registrar-dev": ["GroupMember.ReadWrite.All"]})
    with pytest.raises(GraphRefused) as error:
        await reader.assigned_sku_ids(ANN)
    assert error.value.status == 403 and error.value.code == "Authorization_RequestDenied"
