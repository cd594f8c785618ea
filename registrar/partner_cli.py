"""``partner add`` / ``partner remove``: the partners in the one profiles document (infra/profiles.json
in Azure: Bicep derives the partner containers and Event Grid subscriptions from it, and the app reads the
same text as REGISTRAR_PROFILES).

``add`` onboards a partner: configuration, its upload container, and a write-only SAS. In Azure the SAS is a
user-delegation SAS (signed with an Entra identity; storage account keys are disabled), so this prints the
exact commands. Locally it also creates the container in Azurite and prints a working SAS URL (Azurite
signs with its well-known development key).

``remove`` takes a partner out of the document and prints how to finish in Azure: redeploy, sync the
triggers, delete its Event Grid subscriptions, and revoke its SAS by rotating the user-delegation keys. The
partner's container (its uploads and reports) is kept.
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


def remove_partner(config_path: Path, partner: str) -> ProfilesDocument:
    """Take ``partner`` out of the document; an unknown id changes nothing. Storage is not touched: the
    partner's container, uploads and reports stay."""
    document = json.loads(config_path.read_text(encoding="utf-8"))
    partners = document.get("partners") or {}
    if partner not in partners:
        known = ", ".join(sorted(partners)) or "none"
        raise ConfigError(f"no partner {partner!r} in {config_path} (partners there: {known}); nothing changed")
    del partners[partner]
    validated = load_profiles({"REGISTRAR_PROFILES": json.dumps(document)})
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


REDEPLOY = """az deployment group create -g <resource group> -f infra/main.bicep -p infra/main.bicepparam \\
         -p deployEventSubscriptions=true"""
SYNC = """az functionapp restart -g <resource group> -n <function app>
       az rest --method post --url "$(az functionapp show -g <resource group> -n <function app> --query id -o tsv)/syncfunctiontriggers?api-version=2024-04-01"
       az functionapp function list -g <resource group> -n <function app> --query "[].name" -o tsv"""


def azure_steps(partner: str, container: str, hours: int, config: Path | str = "infra/profiles.json") -> str:
    expiry = (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%MZ")
    function = "ingest_" + container.replace("-", "_")
    return f"""Steps in Azure for partner {partner!r} ({config} is the one list of partners: infra/main.bicepparam
loads infra/profiles.json, so use --config infra/profiles.json for a deployment):
  1. Redeploy: this creates container {container}, its Event Grid subscriptions and the app setting
     REGISTRAR_PROFILES the app indexes {function} from:
       {REDEPLOY}
  2. Sync the triggers so the host indexes the new function, and check that {function} is listed:
       {SYNC}
     (An upload that arrives before the function is indexed is not lost: the reconcile sweep ingests it.)
  3. Issue a write/create-only user-delegation SAS for that container (you need Storage Blob Delegator and
     Storage Blob Data Contributor on the account, or Owner):
       az storage container generate-sas --account-name <storage account> --name {container} \\
         --permissions cw --expiry {expiry} --auth-mode login --as-user --https-only -o tsv
  4. Send the partner https://<storage account>.blob.core.windows.net/{container}?<sas> over a secure channel.
     They upload to <profile>/<file>.csv; they cannot read, list or delete anything.
  Rotate: issue a new SAS before the old one expires. Revoke every user-delegation SAS at once with
     az storage account revoke-delegation-keys -n <storage account> -g <resource group>"""


def removal_steps(partner: str, container: str, config: Path | str) -> str:
    suffix = partner.replace("-", "_")
    return f"""Steps in Azure to finish removing partner {partner!r} ({config} is the one list of partners):
  1. Redeploy, so REGISTRAR_PROFILES no longer has the partner (the app drops ingest_partner_{suffix},
     status_partner_{suffix}_devices and status_partner_{suffix}_upload, and their function keys):
       {REDEPLOY}
  2. Sync the triggers, and check that those functions are gone:
       {SYNC}
  3. Delete the partner's Event Grid subscriptions (an incremental deployment does not delete what the
     template no longer declares):
       az eventgrid system-topic event-subscription delete -g <resource group> --system-topic-name <eventGridTopicName> -n ingest-{container} --yes
       az eventgrid system-topic event-subscription delete -g <resource group> --system-topic-name <eventGridTopicName> -n journal-{container} --yes
  4. Revoke its SAS now. Partner SAS are user-delegation SAS: they stop only at their expiry or when the
     account's user-delegation keys are rotated, which revokes EVERY user-delegation SAS of the account
     (the other partners' and the portal's upload links too):
       az storage account revoke-delegation-keys -n <storage account> -g <resource group>
     then issue new SAS to the remaining partners (python -m registrar partner add prints the command).
  5. Take the partner's Entra group out of portalAllowedGroups / the Registrar.Partner.{partner} app role.
  Kept: container {container} with the partner's uploads and _reports/ (and its devices in the state
  tables). Uploads made to it from now on are not processed. Delete the container yourself when its
  records are no longer needed:
       az storage container delete --account-name <storage account> -n {container} --auth-mode login"""


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
    print(azure_steps(args.id, container, args.hours, config))
    if state:
        url = local_sas_url(state["env"]["AzureWebJobsStorage"], container, args.hours)
        print(f"\nLocal (Azurite) container {container} is ready. Write-only SAS URL, valid {args.hours} h:\n{url}")
        print("Restart `python -m registrar dev` so the local host watches the new container (nothing is lost).")
    else:
        print("\nNo local stack is running: start `python -m registrar dev` to get a local SAS URL.")
    return 0


def cmd_partner_remove(args: argparse.Namespace) -> int:
    config = Path(args.config) if args.config else default_config()
    try:
        remove_partner(config, args.id)
    except (ConfigError, OSError, json.JSONDecodeError) as error:
        print(f"registrar: {error}", file=sys.stderr)
        return 2
    container = PARTNER_CONTAINER_PREFIX + args.id
    print(f"removed partner {args.id!r} from {config}; its container {container} (uploads and reports) is kept")
    print(removal_steps(args.id, container, config))
    if running_dev_state():
        print("\nRestart `python -m registrar dev` so the local host stops watching the container.")
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
    remove = actions.add_parser(
        "remove", help="offboard a partner: out of the configuration (container kept), steps to revoke its SAS"
    )
    remove.add_argument("id", help="the partner's id")
    remove.add_argument("--config", help="profiles JSON to update (infra/profiles.json for Azure; default: as for add)")
    remove.set_defaults(handler=cmd_partner_remove)
