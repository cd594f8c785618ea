"""Graph outcomes in the words admins know from the Intune portal."""

from __future__ import annotations

from .graph.autopilot import GraphRefused

ALREADY_REGISTERED = "Device already registered: no further action required"
OTHER_ORGANISATION = "Device claimed by another organization: check with your device supplier"
INVALID_HASH = "Hardware hash not valid: double-check the hardware hash and resubmit"
NOT_FOUND = "Device not found: confirm these values with your device supplier"


def unexpected(request_id: str, at: str = "") -> str:
    """What Microsoft support asks for: the Graph request-id of the failing call and its time (UTC)."""
    when = f" (call at {at} UTC)" if at else ""
    return f"Unexpected error: contact support with request ID {request_id or 'unknown'}{when}"


def describe_import_error(code: int, name: str, request_id: str = "", at: str = "") -> tuple[str, str]:
    """(stable code, admin message) for a failed import record."""
    if code == 806 or name == "ZtdDeviceAlreadyAssigned":
        return "806", ALREADY_REGISTERED
    if code == 808 or name == "ZtdDeviceAssignedToOtherTenant":
        return "808", OTHER_ORGANISATION
    if name == "InvalidZtdHardwareHash":
        return name, INVALID_HASH
    if name in ("ZtdDeviceNotFound", "DeviceNotFound"):
        return name, NOT_FOUND
    if name == "ZtdDeviceDuplicated":
        return name, "Duplicate of another device in the same import: only one copy was processed"
    return name or str(code), unexpected(request_id, at)


def describe_refusal(error: GraphRefused) -> tuple[str, str]:
    if error.status == 400 and "Edm.Binary" in error.message:
        return "hash.edm_binary", INVALID_HASH
    return f"http.{error.status}", unexpected(error.request_id, error.at.removesuffix("Z"))
