"""Every rejection code, with a message naming file, line and field."""

import pytest

from registrar.synthetic import build_hash
from shared.intake import DeviceRow, Rejection
from tests.helpers import csv_bytes, portal_row, read_one


def _rejected(row, header=None, file="up.csv") -> Rejection:
    kwargs = {"header": header} if header else {}
    outcome = read_one(csv_bytes([row], **kwargs), file)
    assert isinstance(outcome, Rejection), outcome
    return outcome


@pytest.mark.parametrize(
    "row, code, field",
    [
        (["", "", build_hash("X"), "", ""], "serial.missing", "Device Serial Number"),
        (["PF\u00e91", "", build_hash("PF\u00e91"), "", ""], "serial.invalid", "Device Serial Number"),
        (["PF-1", "", build_hash("PF-1"), "Bad/Tag!", ""], "group_tag.invalid", "Group Tag"),
        (["PF-1", "", build_hash("PF-1"), "x" * 129, ""], "group_tag.invalid", "Group Tag"),
        (["PF-1", "", build_hash("PF-1"), "", "bob"], "user.invalid", "Assigned User"),
        (["PF-1", "", build_hash("PF-1"), "", "bob@"], "user.invalid", "Assigned User"),
        (["PF-1", "PK\u00fc", build_hash("PF-1"), "", ""], "product_key.invalid", "Windows Product ID"),
        (["PF-1", "", "", "", ""], "hash.missing", "Hardware Hash"),
        (["PF-1", "", "%%%%", "", ""], "hash.not_base64", "Hardware Hash"),
        (["PF-1", "", build_hash("PF-1")[:300], "", ""], "hash.truncated", "Hardware Hash"),
        (["PF-1", "", build_hash("PF-2"), "", ""], "hash.serial_mismatch", "Hardware Hash"),
        (["PF-1", "", build_hash("PF-1", include_serial=False), "", ""], "hash.no_serial", "Hardware Hash"),
        (["PF-1", "", build_hash("PF-1", include_manufacturer=False), "", ""], "hash.no_manufacturer", "Hardware Hash"),
    ],
)
def test_rejection_codes_name_file_line_and_field(row, code, field):
    rejection = _rejected(row)
    assert rejection.code == code
    assert rejection.field == field
    assert rejection.message.startswith(f"up.csv, line 2, {field}: ")
    assert rejection.serial == row[0]


def test_messages_use_the_files_own_header_spelling():
    rejection = _rejected(["PF-1", build_hash("PF-2")], header=["SerialNumber", "HardwareHash"])
    assert rejection.field == "HardwareHash"
    assert '"PF-2"' in rejection.reason and '"PF-1"' in rejection.reason


def test_serial_match_ignores_case_and_surrounding_spaces():
    outcome = read_one(csv_bytes([["  pf-abc ", "", build_hash("PF-ABC"), "", ""]]))
    assert isinstance(outcome, DeviceRow) and outcome.serial == "pf-abc"


def test_hash_manufacturer_and_model_are_kept_with_the_row():
    outcome = read_one(csv_bytes([["PF-1", "", build_hash("PF-1", "Lenovo", "ThinkPad X1"), "", ""]]))
    assert (outcome.manufacturer, outcome.model) == ("Lenovo", "ThinkPad X1")


def test_unpadded_hash_is_repaired_for_graph():
    text = build_hash("PF-1")[:-2].rstrip("=") + "A"  # drop padding-length chars, 4n+3 long
    outcome = read_one(csv_bytes([["PF-1", "", text, "", ""]]))
    assert isinstance(outcome, DeviceRow)
    assert len(outcome.hardware_hash) % 4 == 0 and outcome.hardware_hash.endswith("=")


def test_tuple_row_without_model_is_rejected():
    header = ["Device Serial Number", "Manufacturer name", "Device model"]
    rejection = _rejected(["PF-1", "Contoso", ""], header=header)
    assert (rejection.code, rejection.field) == ("tuple.incomplete", "Device model")


def test_valid_group_tag_user_and_product_key_are_kept():
    outcome = read_one(
        csv_bytes(
            [
                portal_row(
                    "PF-1", group_tag="Kiosk_EU-1.2", user="a.b@eu.contoso.com", product_key="00330-80000-00000-AA123"
                )
            ]
        )
    )
    assert (outcome.group_tag, outcome.assigned_user, outcome.product_key) == (
        "Kiosk_EU-1.2",
        "a.b@eu.contoso.com",
        "00330-80000-00000-AA123",
    )
