"""Reasons an admin can act on: what is wrong and what to do, bounded, said once."""

import io

from registrar.synthetic import PORTAL_HEADER, build_hash
from shared.intake import DeviceRow, Rejection, open_devices


def outcomes(text: str) -> list:
    return list(open_devices(io.BytesIO(text.encode()), "mail.csv"))


def header() -> str:
    return ",".join(PORTAL_HEADER) + "\r\n"


def test_an_unquoted_hash_wrapped_over_lines_is_one_rejection_that_names_the_lines():
    wrapped = "\r\n".join(build_hash("W-1")[i : i + 76] for i in range(0, len(build_hash("W-1")), 76))
    found = outcomes(header() + f"W-1,,{wrapped},,\r\n" + f"W-2,,{build_hash('W-2')},,\r\n")
    assert len(found) == 2, "one outcome per device, not one per fragment"
    first, second = found
    assert isinstance(first, Rejection) and first.code == "hash.wrapped" and first.serial == "W-1"
    last = 2 + len(wrapped.split("\r\n")) - 1
    assert first.reason == f"the hash starting at line 2 continues on lines 3-{last}: quote it or join the lines"
    assert isinstance(second, DeviceRow) and second.serial == "W-2" and second.line == last + 1


def test_a_value_that_is_not_a_hash_says_what_to_do_not_what_base64_it_lacks():
    (rejection,) = outcomes(header() + "X-1,,QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=,,\r\n")
    assert rejection.code == "hash.bad_magic"
    assert "not a Windows hardware hash" in rejection.reason and "Get-WindowsAutopilotInfo" in rejection.reason
    assert "T0" not in rejection.reason


def test_over_long_values_are_not_echoed_in_full():
    (rejection,) = outcomes(header() + "S" * 300 + f",,{build_hash('X')},,\r\n")
    assert rejection.code == "serial.invalid" and "300 characters long" in rejection.reason
    assert len(rejection.reason) < 160 and "S" * 41 not in rejection.reason


def test_report_rows_do_not_repeat_the_file_and_line_they_already_have_columns_for():
    (rejection,) = outcomes(header() + "X-1,,,,bad user\r\n")
    assert rejection.message.startswith("mail.csv, line 2, ")
    assert not rejection.row_message.startswith("mail.csv") and "line 2" not in rejection.row_message
