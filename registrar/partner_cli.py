"""``partner add``: onboard a partner: configuration, its upload container, and a write-only SAS.

In Azure the SAS is a user-delegation SAS (signed with an Entra identity; storage account keys are
disabled), so this prints the exact commands. Locally it also creates the container in Azurite and prints
a working SAS URL (Azurite signs with its well-known development key).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.config import PARTNER_CONTAINER_PREFIX, ConfigError, ProfilesDocument, load_profiles

from .localhost.environment import ROOT, local_profiles_file, running_dev_state

_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")


def add_partner(config_path: Path, partner: str, profiles: list[str]) -> ProfilesDocument:
    """Validate the whole change first; the file is written only when it is known to be good."""
    if not _ID.fullmatch(partner):
        raise ConfigError(f"partner id {partner!r} must be 1-40 lower-case letters, digits or '-'")
    if not profiles:
        raise ConfigError("name at least one profile the partner may use (--profiles standard,kiosk)")
    document = json.loads(config_path.read_text(encoding="utf-8"))
    document.setdefault("partners", {})[partner] = {"profiles": profiles}
    validated = load_profiles({"REGISTRAR_PROFILES": json.dumps(document)})  # refuse unknown profiles
    config_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return validated


def local_sas_url(connection_string: str, container: str, hours: int) -> str:
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

    service = BlobServiceClient.from_connection_string(connection_string)
    try:
        service.create_container(container)
    except ResourceExistsError:
        pass
    key = service.credential.account_key
    token = generate_container_sas(
        service.account_name,
        container,
        account_key=key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=hours),
    )
    return f"{service.url.rstrip('/')}/{container}?{token}"


def azure_steps(partner: str, container: str, hours: int) -> str:
    expiry = (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%MZ")
    return f"""Steps in Azure for partner {partner!r}:
  1. Add the partner to the Bicep parameters (partners: [{{ id: '{partner}', profiles: [...] }}]) and to
     profilesJson, then redeploy: this creates container {container}, its blob trigger and Event Grid subscription.
  2. Issue a write/create-only user-delegation SAS for that container (you need Storage Blob Delegator and
     Storage Blob Data Contributor on the account, or Owner):
       az storage container generate-sas --account-name <storage account> --name {container} \\
         --permissions cw --expiry {expiry} --auth-mode login --as-user --https-only -o tsv
  3. Send the partner https://<storage account>.blob.core.windows.net/{container}?<sas> over a secure channel.
     They upload to <profile>/<file>.csv; they cannot read, list or delete anything.
  Rotate: issue a new SAS before the old one expires. Revoke every user-delegation SAS at once with
     az storage account revoke-delegation-keys -n <storage account> -g <resource group>"""


def default_config() -> Path:
    """The profiles file of the running ``dev`` if there is one, else the local one under .registrar/
    (created from the samples): never the tracked samples file itself."""
    state = running_dev_state()
    if state and state.get("env", {}).get("REGISTRAR_PROFILES_FILE"):
        return Path(state["env"]["REGISTRAR_PROFILES_FILE"])
    return local_profiles_file(ROOT / ".registrar")


def cmd_partner_add(args: argparse.Namespace) -> int:
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    config = Path(args.config) if args.config else default_config()
    state = running_dev_state()  # decided before anything changes: no hang, no half-done change
    try:
        add_partner(config, args.id, profiles)
    except (ConfigError, OSError, json.JSONDecodeError) as error:
        print(f"registrar: {error}", file=sys.stderr)
        return 2
    container = PARTNER_CONTAINER_PREFIX + args.id
    print(f"added partner {args.id!r} with profiles {profiles} to {config}")
    print(azure_steps(args.id, container, args.hours))
    if state:
        url = local_sas_url(state["env"]["AzureWebJobsStorage"], container, args.hours)
        print(f"\nLocal (Azurite) container {container} is ready. Write-only SAS URL, valid {args.hours} h:\n{url}")
        print("Restart `python -m registrar dev` so the local host watches the new container (nothing is lost).")
    else:
        print("\nNo local stack is running: start `python -m registrar dev` to get a local SAS URL.")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    partner = sub.add_parser("partner", help="manage partners")
    actions = partner.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="onboard a partner: configuration, container, write-only SAS")
    add.add_argument("id", help="the partner's id: 1-40 lower-case letters, digits or '-'")
    add.add_argument("--profiles", required=True, help="comma-separated profiles the partner may use")
    add.add_argument(
        "--config", help="profiles JSON to update (default: the running dev's, else .registrar/profiles.json)"
    )
    add.add_argument("--hours", type=int, default=72, help="SAS lifetime (default 72 hours)")
    add.set_defaults(handler=cmd_partner_add)
