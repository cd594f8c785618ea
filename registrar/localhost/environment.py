"""The local environment's settings: what ``dev`` starts, and how ``upload``/``status`` find it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from shared.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
STATE_FILE = ROOT / ".registrar" / "dev.json"
DEFAULT_PROFILES = ROOT / "samples" / "profiles.json"


def local_env(storage_connection: str, graph_url: str, profiles_file: Path = DEFAULT_PROFILES) -> dict[str, str]:
    return {
        "REGISTRAR_PROFILES_FILE": str(profiles_file),
        "AzureWebJobsStorage": storage_connection,
        "GRAPH_BASE_URL": graph_url.rstrip("/") + "/v1.0",
        "GRAPH_CREDENTIAL": "development",
        "REGISTRATION_QUEUE": "device-registrations",
        "AZURE_TENANT_ID": "local",
    }


def save_dev_state(env: dict[str, str], graph_url: str, path: Path | None = None) -> None:
    path = path or STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"env": env, "graphUrl": graph_url}, indent=1))


def current_settings() -> Settings:
    """Settings from the environment when it names storage, else from a running ``dev``."""
    if os.environ.get("AzureWebJobsStorage") or os.environ.get("AzureWebJobsStorage__accountName"):
        return load_settings()
    if not STATE_FILE.exists():
        raise SystemExit(
            "registrar: nothing to talk to: start `python -m registrar dev` first, "
            "or set AzureWebJobsStorage and REGISTRAR_PROFILES"
        )
    return load_settings(json.loads(STATE_FILE.read_text())["env"])
