"""A Microsoft Graph emulator for Autopilot, Entra devices and groups.

It is a real HTTP server that the real ``msgraph-sdk`` client talks to, and it is deliberately unfriendly
where Graph is: asynchronous imports, eventual consistency, paging, throttling and injected faults.
``docs/graph-emulator.md`` lists each rule and its source.
"""

from .config import EmulatorConfig, FaultConfig, ThrottleConfig
from .server import EmulatorServer

__all__ = ["EmulatorConfig", "EmulatorServer", "FaultConfig", "ThrottleConfig"]
