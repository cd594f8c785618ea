"""The licence check's pure part: which licences a user lacks, the message, when to check again; and the
profiles document's ``requiredLicenses``."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.config import ConfigError, load_profiles
from shared.graph.autopilot import GraphRefused
from shared.licences import (
    READY,
    UserNotFound,
    check_key,
    check_licences,
    due,
    is_ready_message,
    lacking,
    not_found_message,
    ready_message,
    stamp,
)
from shared.state import DeviceRecord
from shared.states import DeviceState

GROUP = "11111111-1111-4111-8111-111111111111"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def profiles(**profile):
    document = {"profiles": {"standard": {"groupTag": "Std", "groupId": GROUP, **profile}}}
    return load_profiles({"REGISTRAR_PROFILES": json.dumps(document)})


def test_lacking_keeps_the_profile_order_and_ignores_case():
    assert lacking(["SPE_E3", "INTUNE_A"], {"INTUNE_A"}) == ["SPE_E3"]
    assert lacking(["SPE_E3", "INTUNE_A"], []) == ["SPE_E3", "INTUNE_A"]
    assert lacking(["spe_e3"], {"SPE_E3", "EMS"}) == []
    assert lacking([], {"SPE_E3"}) == []


def test_messages():
    assert ready_message("ann@contoso.com", []) == READY == "Ready for user"
    assert ready_message("ann@contoso.com", ["SPE_E3"]) == "Ready for user, but ann@contoso.com lacks SPE_E3"
    assert (
        ready_message("ann@contoso.com", ["SPE_E3", "INTUNE_A"])
        == "Ready for user, but ann@contoso.com lacks SPE_E3, INTUNE_A"
    )
    assert not_found_message("bob@contoso.com") == "Ready for user, but user bob@contoso.com not found in Entra ID"
    assert is_ready_message(READY) and is_ready_message(ready_message("a@b.c", ["X"]))
    assert not is_ready_message("Not found in Autopilot: deleted or not visible yet")
    assert not is_ready_message("Already registered (806)")


def test_a_user_is_checked_again_after_six_hours_or_when_the_question_changes():
    key = check_key("Ann@Contoso.com", ["SPE_E3", "INTUNE_A"])
    assert key == check_key("ann@contoso.com", ["INTUNE_A", "spe_e3"])  # the same question
    assert due("", key, NOW)
    checked = stamp(key, NOW)
    assert not due(checked, key, NOW + timedelta(hours=5, minutes=59))
    assert due(checked, key, NOW + timedelta(hours=6))
    assert due(checked, check_key("bob@contoso.com", ["SPE_E3", "INTUNE_A"]), NOW)  # another user
    assert due(checked, check_key("ann@contoso.com", ["SPE_E3"]), NOW)  # the profile's list changed
    assert due("garbage", key, NOW) and due(f"{key}@not-a-time", key, NOW)


def test_required_licenses_in_the_profiles_document():
    assert profiles().profiles["standard"].required_licenses == ()  # optional: old documents stay valid
    assert profiles(requiredLicenses=["SPE_E3", " INTUNE_A "]).profiles["standard"].required_licenses == (
        "SPE_E3",
        "INTUNE_A",
    )
    assert profiles(requiredLicenses=["SPE_E3", "spe_e3"]).profiles["standard"].required_licenses == ("SPE_E3",)
    assert profiles(requiredLicenses=[]).profiles["standard"].required_licenses == ()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("SPE_E3", "must be a list of SKU part numbers"),
        (["SPE_E3", ""], "'' is not a SKU part number"),
        (["  "], "is not a SKU part number"),
        ([3], "3 is not a SKU part number"),
        ([None], "None is not a SKU part number"),
        (["SPE_E3,EMS"], "'SPE_E3,EMS' is not a SKU part number"),
    ],
)
def test_invalid_required_licenses_name_the_profile(value, says):
    with pytest.raises(ConfigError) as error:
        profiles(requiredLicenses=value)
    assert "profiles.standard.requiredLicenses" in str(error.value) and says in str(error.value)


@pytest.fixture
def anyio_backend():
    return "asyncio"


class FakeStore:
    def __init__(self, devices):
        self.devices = {d.serial: d for d in devices}

    def update_device(self, serial, change):
        record = self.devices[serial]
        if change(record) is False:
            return None
        return record


class FakeReader:
    def __init__(self, users, refuse=None):
        self.users, self.refuse, self.reads = users, refuse or {}, []

    async def sku_part_numbers(self):
        return {"id-e3": "SPE_E3", "id-intune": "INTUNE_A"}

    async def assigned_sku_ids(self, user):
        self.reads.append(user)
        if user in self.refuse:
            raise self.refuse[user]
        if user not in self.users:
            raise UserNotFound(user)
        return self.users[user]


def device(serial, user, profile="standard", **fields):
    return DeviceRecord(
        serial,
        profile,
        "",
        "Std",
        "",
        "u1",
        "f.csv",
        1,
        assigned_user=user,
        **{"state": DeviceState.READY, "message": READY, **fields},
    )


@pytest.mark.anyio
async def test_one_read_per_user_a_refused_user_is_skipped_and_a_403_stops_the_check():
    document = profiles(requiredLicenses=["SPE_E3"])
    devices = [
        device("A", "ann@contoso.com"),
        device("B", "Ann@Contoso.com"),
        device("C", "$odd@contoso.com"),
        device("D", "bob@contoso.com"),
        device("E", ""),
    ]
    odd = GraphRefused(400, "BadRequest", "Resource not found for the segment '$odd@contoso.com'.")
    reader = FakeReader({"ann@contoso.com": {"id-intune"}, "bob@contoso.com": {"id-e3"}}, {"$odd@contoso.com": odd})
    store = FakeStore(devices)
    summary = await check_licences(store, reader, document, devices, NOW)
    assert reader.reads == ["ann@contoso.com", "$odd@contoso.com", "bob@contoso.com"]  # Ann once for A and B
    messages = {s: d.message for s, d in store.devices.items()}
    assert messages == {
        "A": "Ready for user, but ann@contoso.com lacks SPE_E3",
        "B": "Ready for user, but Ann@Contoso.com lacks SPE_E3",
        "C": READY,  # could not be read: unchanged, and due again next run
        "D": READY,
        "E": READY,
    }
    assert store.devices["C"].licence_checked == "" and store.devices["D"].licence_checked
    assert summary.warnings == 2 and len(summary.errors) == 1 and "$odd@contoso.com" in summary.errors[0]

    denied = GraphRefused(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    fresh = [device("F", "carol@contoso.com"), device("G", "dave@contoso.com")]
    reader = FakeReader({}, {"carol@contoso.com": denied})
    summary = await check_licences(FakeStore(fresh), reader, document, fresh, NOW)
    assert reader.reads == ["carol@contoso.com"]  # no point asking for Dave
    assert "User.Read.All and LicenseAssignment.Read.All" in summary.errors[0]


@pytest.mark.anyio
async def test_a_warning_goes_when_the_profile_no_longer_requires_licences():
    stale = device("A", "ann@contoso.com", message="Ready for user, but ann@contoso.com lacks SPE_E3")
    store = FakeStore([stale])
    await check_licences(store, FakeReader({}), profiles(), [stale], NOW)
    assert store.devices["A"].message == READY
