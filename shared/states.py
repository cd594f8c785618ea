"""Device states an admin watches, and which of them still need Graph polling. Pure, no I/O."""

from __future__ import annotations

from enum import StrEnum


class DeviceState(StrEnum):
    QUEUED = "queued"  # accepted, message on the queue
    IMPORTING = "importing"  # a Graph import call is (or was, before a crash) in flight
    PENDING = "pending"  # Graph accepted the import; Intune is processing it
    FAILED = "failed"
    READY = "ready"  # registered in Autopilot, not enrolled yet
    ACTIVE = "active"  # enrolled, seen within 7 days
    INACTIVE = "inactive"  # enrolled, not seen for 7 days


DISPLAY = {
    DeviceState.QUEUED: "Queued",
    DeviceState.IMPORTING: "Registration Pending",
    DeviceState.PENDING: "Registration Pending",
    DeviceState.FAILED: "Registration failed",
    DeviceState.READY: "Ready for user",
    DeviceState.ACTIVE: "Active",
    DeviceState.INACTIVE: "Inactive",
}

# A message for a device in one of these states has nothing left to do: redelivery is a no-op.
IMPORT_DONE = frozenset(
    {DeviceState.PENDING, DeviceState.READY, DeviceState.ACTIVE, DeviceState.INACTIVE, DeviceState.FAILED}
)
# The timer polls Graph for devices in these states (the state store keeps an index of them).
POLLED = frozenset({DeviceState.PENDING, DeviceState.IMPORTING})
REGISTERED = frozenset({DeviceState.READY, DeviceState.ACTIVE, DeviceState.INACTIVE})
FINAL_FOR_DEMO = frozenset({DeviceState.FAILED, *REGISTERED})
