"""The licence check's pure part: which licences a user lacks, the message, when to check again; and the
profiles document's ``requiredLicenses``."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.config import ConfigError, load_profiles
from shared.licences import (
    READY,
    check_key,
    due,
    is_ready_message,
    lacking,
    not_found_message,
    ready_message,
    stamp,
)

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
