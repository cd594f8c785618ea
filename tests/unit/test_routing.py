"""Upload routing: containers and paths decide admin/partner and profile; unsafe names are refused."""

import pytest

from shared.config import load_profiles
from shared.routing import UploadRejected, is_report, route

PROFILES = load_profiles(
    {
        "REGISTRAR_PROFILES": (
            '{"profiles": {"standard": {"groupTag": "S", "groupId": "11111111-1111-4111-8111-111111111111"},'
            ' "kiosk": {"groupTag": "K", "groupId": "22222222-2222-4222-8222-222222222222"}},'
            ' "partners": {"contoso": {"profiles": ["standard"]}}}'
        )
    }
)


def test_admin_and_partner_uploads_are_routed():
    admin = route("device-uploads", "kiosk/march.csv", PROFILES)
    assert (admin.profile, admin.partner) == ("kiosk", None)
    partner = route("partner-contoso", "standard/Delivery 42.CSV", PROFILES)
    assert (partner.profile, partner.partner) == ("standard", "contoso")


@pytest.mark.parametrize(
    "container, name, code",
    [
        ("partner-contoso", "kiosk/a.csv", "upload.profile_not_allowed"),
        ("device-uploads", "unknown/a.csv", "upload.unknown_profile"),
        ("partner-fabrikam", "standard/a.csv", "upload.unknown_container"),
        ("device-uploads", "standard/../kiosk/a.csv", "upload.bad_name"),
        ("device-uploads", "standard/%2e%2e/a.csv", "upload.bad_name"),
        ("device-uploads", "standard/..csv", "upload.bad_name"),
        ("device-uploads", "/standard/a.csv", "upload.bad_name"),
        ("device-uploads", "standard\\a.csv", "upload.bad_name"),
        ("device-uploads", "standard/" + "a" * 600 + ".csv", "upload.bad_name"),
        ("device-uploads", "st\u0430ndard/a.csv", "upload.bad_name"),  # Cyrillic a
        ("device-uploads", "standard/ｆｕｌｌ.csv", "upload.bad_name"),  # full-width letters
        ("device-uploads", "standard/a.xlsx", "upload.bad_name"),
        ("device-uploads", "a.csv", "upload.bad_name"),
    ],
)
def test_refused_uploads_have_a_code_and_reason(container, name, code):
    with pytest.raises(UploadRejected) as info:
        route(container, name, PROFILES)
    assert info.value.code == code and info.value.reason


def test_reports_are_recognised_so_they_are_never_ingested():
    assert is_report("_reports/standard/a.csv.result.csv") and not is_report("standard/_reports.csv")
