"""Keep an emulated tenant across restarts of ``registrar dev``: storage (Azurite) keeps its data in the
data directory, so Graph must too, or every device the stack registered would be unknown to the new Graph.

The tenant's own state (imports, devices, Entra objects, groups, pending work) is pickled when the emulator
stops and loaded when it starts. Its clock continues where it stopped plus the time it was down, so an
import that was "unknown" finishes as if Graph had kept running. The file is the local stack's own (in its
data directory): nothing else writes it.
"""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

from .tenant import Tenant

_NOT_STATE = ("config", "clock")


def save(tenant: Tenant, path: Path) -> None:
    state = {k: v for k, v in vars(tenant).items() if k not in _NOT_STATE}
    payload = {"version": 2, "monotonic": tenant.clock.monotonic(), "wall": time.time(), "state": state}
    tmp = path.with_suffix(path.suffix + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(pickle.dumps(payload))
    os.replace(tmp, path)  # a stop cut short never leaves half a file


def load(tenant: Tenant, path: Path) -> bool:
    """Restore ``tenant`` from ``path``; False when there is nothing to restore (first start)."""
    try:
        payload = pickle.loads(path.read_bytes())  # noqa: S301 - the local stack's own file
    except FileNotFoundError:
        return False
    if payload.get("version") != 2:
        return False
    vars(tenant).update(payload["state"])
    down = max(0.0, time.time() - payload["wall"])
    tenant.clock.continue_from(payload["monotonic"] + down)
    return True
