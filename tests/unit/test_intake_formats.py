"""Every encoding, delimiter, line ending and header spelling real tools produce is read the same."""

import io

import pytest

from registrar.synthetic import build_hash
from shared.intake import DeviceRow, open_devices
from tests.helpers import csv_bytes, file_error, portal_row, read

ROWS = [portal_row("PF-001", group_tag="Sales"), portal_row("PF 002", user="ana@contoso.com")]


def _serials(outcomes):
    assert all(isinstance(o, DeviceRow) for o in outcomes), outcomes
    return [o.serial for o in outcomes]


@pytest.mark.parametrize(
    "encoding, label",
    [
        ("utf-8", "UTF-8"),
        ("utf-8-sig", "UTF-8 with BOM"),
        ("utf-16", "UTF-16 LE with BOM"),  # PowerShell 5.1 Out-File
        ("utf-16-le", "UTF-16 LE"),  # BOM stripped by another tool
        ("utf-16-be", "UTF-16 BE"),
        ("cp1252", "Windows-1252 (ANSI)"),
    ],
)
def test_every_encoding_reads_the_same_devices(encoding, label):
    rows = [*ROWS, ["PF-003", "", build_hash("PF-003"), "", ""]]
    data = csv_bytes(rows, encoding=encoding)
    if encoding == "cp1252":  # make it really ANSI: a non-ASCII byte that is not UTF-8
        data = csv_bytes([["Société", "Modèle", "PF-004"]], header=None, encoding="cp1252")
        opened = open_devices(io.BytesIO(data), "ansi.csv")
        (row,) = list(opened)
        assert opened.encoding.label == label
        assert (row.manufacturer, row.model, row.serial) == ("Société", "Modèle", "PF-004")
        return
    opened = open_devices(io.BytesIO(data), "f.csv")
    assert opened.encoding.label == label
    assert _serials(list(opened)) == ["PF-001", "PF 002", "PF-003"]


def test_utf16_big_endian_with_bom():
    opened = open_devices(io.BytesIO(csv_bytes(ROWS, encoding="utf-16-be").join([b"\xfe\xff", b""])), "f.csv")
    assert opened.encoding.label == "UTF-16 BE with BOM"
    assert _serials(list(opened)) == ["PF-001", "PF 002"]


def test_a_stray_ansi_byte_late_in_a_utf8_file_is_not_lost():
    rows = [[f"PF-{n:03d}", "", build_hash(f"PF-{n:03d}"), "", ""] for n in range(20)]
    data = csv_bytes(rows) + "Caf\u00e9,Mod\u00e8le,PF-999\r\n".encode("cp1252")
    outcomes = read(data)
    assert len(outcomes) == 21
    assert outcomes[-1].serial == "Caf\u00e9"  # decoded as ANSI, then judged on its merits
    assert outcomes[-1].code == "serial.invalid"


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
@pytest.mark.parametrize("quote", [False, True])
def test_delimiters_line_endings_and_quoting(delimiter, newline, quote):
    data = csv_bytes(ROWS, delimiter=delimiter, newline=newline, quote=quote)
    assert _serials(read(data)) == ["PF-001", "PF 002"]


def test_blank_lines_trailing_delimiters_and_whitespace_are_tolerated():
    header = "Device Serial Number , Windows Product ID,Hardware Hash ,Group Tag,Assigned User,,"
    body = f"\r\n\r\n  PF-001 , , {build_hash('PF-001')} ,  Sales ,,,\r\n\r\n   \r\n"
    outcomes = read(("\r\n" + header + body).encode())
    (row,) = outcomes
    assert (row.serial, row.group_tag, row.line) == ("PF-001", "Sales", 4)


def test_line_numbers_point_at_the_row_in_the_file():
    data = csv_bytes([portal_row("A1"), ["", "", "", "", ""], portal_row("A3", hash_serial="ZZ")])
    outcomes = read(data)
    assert [o.line for o in outcomes] == [2, 4]


def test_a_hash_wrapped_over_several_lines_inside_quotes():
    wrapped = "\n".join(build_hash("PF-001")[i : i + 64] for i in range(0, 4000, 64))
    data = 'Device Serial Number,Hardware Hash\r\nPF-001,"' + wrapped + '"\r\nPF-002,' + build_hash("PF-002") + "\r\n"
    outcomes = read(data.encode())
    assert _serials(outcomes) == ["PF-001", "PF-002"]
    assert [o.line for o in outcomes] == [2, 65]


@pytest.mark.parametrize(
    "header",
    [
        ["Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"],
        ["SerialNumber", "ProductKey", "HardwareHash", "GroupTag", "AssignedUser"],
        ["serial number", "productkey", "hardwareIdentifier", "OrderID", "ASSIGNED USER"],
        ["DEVICE SERIAL NUMBER", "WINDOWS PRODUCT ID", "HARDWARE HASH", "orderid", "assigneduser"],
    ],
)
def test_header_aliases_in_any_case(header):
    (row,) = read(csv_bytes([portal_row("PF-1", group_tag="Sales", user="a@b.com", product_key="PK1")], header=header))
    assert (row.serial, row.product_key, row.group_tag, row.assigned_user) == ("PF-1", "PK1", "Sales", "a@b.com")
    assert row.kind == "hash"


def test_columns_in_any_order_and_extra_columns_ignored():
    header = ["Notes", "Hardware Hash", "Manufacturer name", "Device model", "Device Serial Number"]
    (row,) = read(csv_bytes([["x", build_hash("PF-1", "HP", "Elite"), "HP", "Elite", "PF-1"]], header=header))
    assert (row.serial, row.manufacturer, row.model) == ("PF-1", "HP", "Elite")


def test_oem_partner_center_format_with_manufacturer_and_model():
    header = ["Device Serial Number", "Windows Product ID", "Hardware Hash", "Manufacturer name", "Device model"]
    (row,) = read(csv_bytes([["PF-1", "", "", "Contoso", "Laptop 7"]], header=header))
    assert (row.kind, row.manufacturer, row.model) == ("tuple", "Contoso", "Laptop 7")


def test_headerless_manufacturer_model_serial_file():
    outcomes = read(csv_bytes([["Contoso", "Laptop 7", "PF-1"], ["Contoso", "Laptop 7", "PF-2"]], header=None))
    assert [(o.kind, o.serial, o.line) for o in outcomes] == [("tuple", "PF-1", 1), ("tuple", "PF-2", 2)]


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "file.empty"),
        (b"\r\n  \r\n", "file.empty"),
        (b"\xef\xbb\xbf", "file.empty"),
        (b"PK\x03\x04" + bytes(range(256)) * 4, "file.zip"),
        (bytes(range(256)) * 20, "file.binary"),
        (b"Name,Address,Phone,Email\r\nBob,1 Main St,555,b@c.d\r\n", "file.unrecognised_header"),
        (b"Hardware Hash,Group Tag\r\nabc,def\r\n", "file.no_serial_column"),
    ],
)
def test_files_that_are_not_device_csvs_are_rejected_whole(data, code):
    assert file_error(data, "bad.csv").code == code
    assert "bad.csv" in str(file_error(data, "bad.csv"))


def test_random_bytes_are_rejected_not_crashed():
    import random

    rng = random.Random(7)
    for _ in range(50):
        data = rng.randbytes(rng.randint(1, 5000))
        try:
            list(open_devices(io.BytesIO(data), "r.csv"))
        except Exception as error:  # only the documented file-level rejection may escape
            assert type(error).__name__ == "FileRejected", error


def test_headers_only_gives_no_rows():
    assert read(b"Device Serial Number,Windows Product ID,Hardware Hash\r\n") == []


def test_an_overlong_line_ends_the_file_without_losing_earlier_rows():
    data = csv_bytes([portal_row("PF-1")]) + b"PF-2," + b"A," * 100_000 + b"\r\n"
    outcomes = read(data)
    assert outcomes[0].serial == "PF-1"
    assert outcomes[1].code == "file.line_too_long" and outcomes[1].line == 3


def test_the_size_limit_stops_reading():
    data = csv_bytes([portal_row(f"PF-{n}") for n in range(40)])
    outcomes = list(open_devices(io.BytesIO(data), "big.csv", max_bytes=80_000))
    assert outcomes[-1].code == "file.too_large"
    assert all(isinstance(o, DeviceRow) for o in outcomes[:-1]) and len(outcomes) > 5


def test_line_length_counts_characters_not_bytes_so_line_numbers_never_shift():
    """A UTF-8 line of 2-byte characters: 40,000 of them (80,000 bytes) is one line of a valid length, the
    rows after it keep their numbers; 70,000 of them is too long and is refused at its own line."""
    header_and_first = csv_bytes([portal_row("PF-1")])
    third_row = csv_bytes([portal_row("PF-3")]).split(b"\r\n", 1)[1]
    within = read(header_and_first + ("PF-2," + "é" * 40_000 + ",,\r\n").encode() + third_row)
    assert [(o.line, o.serial) for o in within if o.serial in ("PF-1", "PF-3")] == [(2, "PF-1"), (4, "PF-3")]
    assert len(within) == 3
    over = read(header_and_first + ("PF-2," + "é" * 70_000 + "\r\n").encode())
    assert over[1].code == "file.line_too_long" and over[1].line == 3
