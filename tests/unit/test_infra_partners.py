"""One list of partners (issue #12): the partner containers and Event Grid subscriptions Bicep deploys, the
containers the app watches and the ingest functions function_app.py indexes all come from the same profiles
document, infra/profiles.json, so they cannot disagree. (When they did, Event Grid delivered events for
functions the host had not indexed and the blob extension dropped them as FunctionNotFound.)

The Bicep side is emulated: the tests pin main.bicep's exact expressions and the wiring from
main.bicepparam to the modules, and evaluate those expressions on the document as ARM would.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
from pathlib import Path

import pytest

from registrar.localhost.blob_trigger import ingest_function_name
from shared.config import ConfigError, load_profiles, load_settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
GROUP = "11111111-1111-4111-8111-111111111111"


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text)


MAIN = squeeze((INFRA / "main.bicep").read_text())
# main.bicep's derivation of the upload containers from the profiles document, verbatim.
BICEP_PROFILES = "var profiles = json(profilesJson)"
BICEP_PARTNER_CONTAINERS = (
    "var partnerContainers = [for partner in items(contains(profiles, 'partners') ? profiles.partners : {}):"
    " 'partner-${partner.key}']"
)
BICEP_UPLOAD_CONTAINERS = "var uploadContainers = concat(['device-uploads'], partnerContainers)"


def module_block(name: str) -> str:
    """The body of ``module <name> '...' = ... {`` in main.bicep, up to its closing brace at column 0."""
    match = re.search(
        rf"^module {name} '[^']+' = [^{{\n]*\{{\n(.*?)^\}}", (INFRA / "main.bicep").read_text(), re.S | re.M
    )
    assert match, f"module {name} not found in main.bicep"
    return match.group(1)


def bicep_upload_containers(profiles_json: str) -> list[str]:
    """main.bicep's ``uploadContainers`` for this ``profilesJson``, evaluated as ARM does: ``json()`` fails
    the deployment on invalid JSON; ``items()`` gives one entry per key of ``partners`` (keys in any
    order: compared as sorted lists)."""
    profiles = json.loads(profiles_json)
    partners = profiles["partners"] if "partners" in profiles else {}
    return ["device-uploads", *[f"partner-{key}" for key, _ in partners.items()]]


def bicep_webhook_function(container: str) -> str:
    """eventgrid-webhooks.bicep's endpoint: ``functionName=Host.Functions.ingest_${replace(container, '-', '_')}``."""
    return "ingest_" + container.replace("-", "_")


def indexed_app(monkeypatch, profiles_json: str | None):
    """function_app.py imported afresh as the Python worker imports it, with this REGISTRAR_PROFILES."""
    if profiles_json is None:
        monkeypatch.delenv("REGISTRAR_PROFILES", raising=False)
    else:
        monkeypatch.setenv("REGISTRAR_PROFILES", profiles_json)
    monkeypatch.delenv("REGISTRAR_PROFILES_FILE", raising=False)
    spec = importlib.util.spec_from_file_location(f"function_app_{next(_COUNT)}", ROOT / "function_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


_COUNT = itertools.count()


def ingest_functions(app) -> dict[str, dict]:
    """Each indexed blob-trigger function: its name -> its trigger binding."""
    found = {}
    for fn in app.get_functions():
        trigger = fn.get_bindings()[0]
        if trigger.type == "blobTrigger":
            found[fn.get_function_name()] = {"path": trigger.path, "connection": trigger.connection}
    return found


DOCUMENTS = {
    "infra/profiles.json": (INFRA / "profiles.json").read_text(),
    "no partners key": json.dumps({"profiles": {"standard": {"groupTag": "S", "groupId": GROUP}}}),
    "empty partners": json.dumps({"profiles": {"standard": {"groupTag": "S", "groupId": GROUP}}, "partners": {}}),
    "several partners": json.dumps(
        {
            "profiles": {"standard": {"groupTag": "S", "groupId": GROUP}, "kiosk": {"groupTag": "K", "groupId": GROUP}},
            "partners": {
                "zeta": {"profiles": ["kiosk"]},
                "fabrikam-eu": {"profiles": ["standard", "kiosk"]},
                "contoso": {"profiles": ["standard"]},
                "a" + "b" * 38 + "c": {"profiles": ["standard"]},  # the longest id the app accepts (40)
            },
        }
    ),
}


def test_main_bicep_derives_the_partner_containers_from_the_profiles_document_only():
    """Pins the expressions the emulation evaluates, and the wiring: the one file goes to Bicep's
    ``profilesJson``, from which come the containers, both kinds of Event Grid subscription and the app's
    REGISTRAR_PROFILES. A second list anywhere (a ``partners`` parameter) fails here."""
    assert BICEP_PROFILES in MAIN and BICEP_PARTNER_CONTAINERS in MAIN and BICEP_UPLOAD_CONTAINERS in MAIN
    assert "loadTextContent('profiles.json')" in squeeze((INFRA / "main.bicepparam").read_text())
    assert not re.search(r"\bparam partners\b|\bpartners: \[", MAIN)
    for module in ("storage", "events", "webhooks"):
        assert re.search(r"\b(uploadContainers|containers): uploadContainers\b", module_block(module)), module
    assert "profilesJson: profilesJson" in module_block("functionApp")
    functionapp = squeeze((INFRA / "modules" / "functionapp.bicep").read_text())
    assert "{ name: 'REGISTRAR_PROFILES', value: profilesJson }" in functionapp
    storage = squeeze((INFRA / "modules" / "storage.bicep").read_text())
    assert "[for name in uploadContainers:" in storage
    for subscriptions in ("eventgrid.bicep", "eventgrid-webhooks.bicep"):
        assert "[for container in containers:" in squeeze((INFRA / "modules" / subscriptions).read_text())


@pytest.mark.parametrize("document", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_the_containers_bicep_deploys_are_the_containers_the_app_watches(document):
    settings = load_settings({"REGISTRAR_PROFILES": document, "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert sorted(bicep_upload_containers(document)) == sorted(settings.containers)


@pytest.mark.parametrize("document", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_function_app_indexes_one_ingest_function_per_deployed_container(monkeypatch, document):
    """Every Event Grid webhook subscription names a function the app indexes, and every container the
    app indexes a function for has its subscriptions: no event can meet FunctionNotFound."""
    functions = ingest_functions(indexed_app(monkeypatch, document))
    containers = bicep_upload_containers(document)
    assert sorted(functions) == sorted(bicep_webhook_function(c) for c in containers)
    for container in containers:
        trigger = functions[bicep_webhook_function(container)]
        assert trigger == {"path": f"{container}/{{name}}", "connection": "DataStorage"}
        assert bicep_webhook_function(container) == ingest_function_name(container)  # the local host's too


def test_every_partner_id_the_app_accepts_gives_valid_azure_names():
    """The longest id the app accepts still makes a valid container (3-63 characters) and valid Event Grid
    subscription names (3-64): Bicep never fails half-way on a document the app accepts."""
    longest = "a" + "b" * 38 + "c"
    load_profiles({"REGISTRAR_PROFILES": DOCUMENTS["several partners"]})
    container = f"partner-{longest}"
    assert re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", container)
    for subscription in (f"ingest-{container}", f"journal-{container}"):
        assert re.fullmatch(r"[A-Za-z0-9-]{3,64}", subscription), subscription
    with pytest.raises(ConfigError, match="1-40 lower-case"):
        load_profiles(
            {
                "REGISTRAR_PROFILES": json.dumps(
                    {
                        "profiles": {"s": {"groupTag": "S", "groupId": GROUP}},
                        "partners": {longest + "d": {"profiles": ["s"]}},
                    }
                )
            }
        )


INVALID = {
    "not JSON": ("{not json", "not valid JSON"),
    "missing": (None, "set REGISTRAR_PROFILES"),
    "unknown profile": (
        json.dumps(
            {
                "profiles": {"standard": {"groupTag": "S", "groupId": GROUP}},
                "partners": {"contoso": {"profiles": ["kiosk"]}},
            }
        ),
        "partner 'contoso' allows unknown profile(s) ['kiosk']",
    ),
    "partner id": (
        json.dumps(
            {
                "profiles": {"standard": {"groupTag": "S", "groupId": GROUP}},
                "partners": {"Contoso_EU": {"profiles": ["standard"]}},
            }
        ),
        "partner id 'Contoso_EU' must be 1-40 lower-case",
    ),
    "unknown key": (
        json.dumps(
            {
                "profiles": {"standard": {"groupTag": "S", "groupId": GROUP}},
                "partner": {"contoso": {"profiles": ["standard"]}},
            }
        ),
        "partner: Extra inputs are not permitted",
    ),
}


@pytest.mark.parametrize(("document", "message"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_profiles_document_fails_indexing_loudly_instead_of_dropping_partner_functions(
    monkeypatch, document, message
):
    """The app never indexes without its partner functions: importing function_app.py raises (the worker
    reports it and no function runs), naming the setting and the fault."""
    with pytest.raises(ConfigError) as failure:
        indexed_app(monkeypatch, document)
    assert str(failure.value).startswith("function app not indexed: ")
    assert message in str(failure.value)
    if document is not None and document.startswith("{not"):
        with pytest.raises(json.JSONDecodeError):
            bicep_upload_containers(document)  # and ARM's json() fails the deployment


def test_the_committed_profiles_document_is_valid_for_the_app():
    document = load_profiles({"REGISTRAR_PROFILES": DOCUMENTS["infra/profiles.json"]})
    assert document.partners, "infra/profiles.json should show how a partner is declared"
