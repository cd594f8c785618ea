"""The local environment's settings: what ``dev`` starts, and how ``upload``/``status`` find it."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

from shared.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
# Where a running ``dev`` says how to reach it; REGISTRAR_STATE_FILE moves it (tests, several stacks).
STATE_FILE = Path(os.environ.get("REGISTRAR_STATE_FILE") or ROOT / ".registrar" / "dev.json")
DEFAULT_PROFILES = ROOT / "samples" / "profiles.json"


def local_profiles_file(data: Path) -> Path:
    """The profiles document a local stack uses: under its data directory, first copied from the samples,
    so that onboarding a partner locally never edits the tracked sample."""
    path = data / "profiles.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEFAULT_PROFILES.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def local_env(storage_connection: str, graph_url: str, profiles_file: Path = DEFAULT_PROFILES) -> dict[str, str]:
    return {
        "REGISTRAR_PROFILES_FILE": str(profiles_file),
        "AzureWebJobsStorage": storage_connection,
        "GRAPH_BASE_URL": graph_url.rstrip("/") + "/v1.0",
        "GRAPH_CREDENTIAL": "development",
        "REGISTRATION_QUEUE": "device-registrations",
        "AZURE_TENANT_ID": "local",
        # A batch left behind by a stopped host comes back after its lock expires: keep that short locally.
        "SERVICEBUS_LOCK_DURATION": "PT30S",
        # The local timer runs every few seconds: clean-up in short slices, so imports keep settling.
        "RECONCILE_CLEANUP_SECONDS": "20",
        "FLEET_CHECK_SECONDS": "0",  # every run: drift is undone at once in the demo and the tests
    }


def save_dev_state(env: dict[str, str], graph_url: str, path: Path | None = None, **facts: object) -> None:
    """Where ``upload``/``status``/``retry`` find this host; ``facts`` (endpoints, data directory) for people."""
    path = path or STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"env": env, "graphUrl": graph_url, "pid": os.getpid(), **facts}, indent=1))


def clear_dev_state(path: Path | None = None) -> None:
    (path or STATE_FILE).unlink(missing_ok=True)


def running_dev_state(path: Path | None = None) -> dict | None:
    """The state of a ``dev`` that is running now, or None (no file, its process gone, storage down)."""
    path = path or STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, someone else's
    return state if _reachable(state.get("env", {}).get("AzureWebJobsStorage", "")) else None


def _reachable(connection: str, timeout: float = 1.0) -> bool:
    match = re.search(r"BlobEndpoint=(https?://[^;]+)", connection)
    if not match:
        return bool(connection)  # not Azurite: let the client find out
    url = urlsplit(match[1])
    try:
        with socket.create_connection((url.hostname, url.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


NOT_RUNNING = (
    "registrar: no local stack is running: start `python -m registrar dev` "
    "(or set AzureWebJobsStorage and REGISTRAR_PROFILES to use another storage account)"
)


def current_settings() -> Settings:
    """Settings from the environment when it names storage, else from a running ``dev``."""
    if any(k == "AzureWebJobsStorage" or k.startswith("AzureWebJobsStorage__") for k in os.environ):
        return load_settings()
    state = running_dev_state()
    if state is None:
        raise SystemExit(NOT_RUNNING)
    return load_settings(state["env"])
