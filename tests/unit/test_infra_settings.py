"""The settings the app reads and the settings the Bicep sets must not drift apart."""

import os
import re
from pathlib import Path

import pytest

from shared.config import LOCAL_ONLY_SETTINGS, PLATFORM_SETTINGS, SETTING_NAMES, load_settings

INFRA = Path(__file__).resolve().parents[2] / "infra"
APP_SETTING = re.compile(r"\{\s*name:\s*'([^']+)'\s*,\s*value:")


def bicep_settings() -> set[str]:
    return set(APP_SETTING.findall((INFRA / "modules" / "functionapp.bicep").read_text()))


def test_every_setting_the_app_needs_in_azure_is_set_by_bicep():
    needed = set(SETTING_NAMES) - set(LOCAL_ONLY_SETTINGS)
    # Azure uses the identity-based forms, never a connection string:
    assert {f"DataStorage__{s}ServiceUri" for s in ("blob", "queue", "table")} <= needed
    assert "ServiceBusConnection__fullyQualifiedNamespace" in needed
    missing = needed - bicep_settings()
    assert not missing, f"the app reads these but the Bicep does not set them: {sorted(missing)}"


def test_bicep_sets_nothing_the_app_or_platform_does_not_read():
    unknown = bicep_settings() - set(SETTING_NAMES) - set(PLATFORM_SETTINGS)
    assert not unknown, f"the Bicep sets settings nobody reads: {sorted(unknown)}"


def test_no_keys_or_connection_strings_in_app_settings():
    text = (INFRA / "modules" / "functionapp.bicep").read_text()
    assert not (set(LOCAL_ONLY_SETTINGS) & bicep_settings())
    assert "listKeys" not in text and "AccountKey" not in text and "SharedAccessKey" not in text


def test_binding_expressions_name_real_settings():
    source = (Path(__file__).resolve().parents[2] / "function_app.py").read_text()
    for name in re.findall(r"%([A-Za-z_]+)%", source):
        assert name in SETTING_NAMES, name


def test_every_partner_container_and_event_subscription_follows_the_naming_the_app_uses():
    main = (INFRA / "main.bicep").read_text()
    # One list of partners: the profiles document the app reads as REGISTRAR_PROFILES.
    assert "'partner-${partner.key}'" in main and "['device-uploads']" in main
    assert "param partners" not in main
    webhooks = (INFRA / "modules" / "eventgrid-webhooks.bicep").read_text()
    assert "Host.Functions.ingest_${replace(container, '-', '_')}" in webhooks  # function_app.py's names


APP_SETTING_VALUE = re.compile(r"\{\s*name:\s*'([^']+)'\s*,\s*value:\s*(.+?)\s*\}\s*$", re.M)
CLIENT_ID = "00000000-0000-4000-8000-0000000000aa"
# The values main.bicep passes (storage account endpoints end with '/', as primaryEndpoints do).
PARAMS = {
    "hostBlobServiceUri": "https://apreghs.blob.core.windows.net/",
    "hostQueueServiceUri": "https://apreghs.queue.core.windows.net/",
    "hostTableServiceUri": "https://apreghs.table.core.windows.net/",
    "blobServiceUri": "https://apregst.blob.core.windows.net/",
    "queueServiceUri": "https://apregst.queue.core.windows.net/",
    "tableServiceUri": "https://apregst.table.core.windows.net/",
    "identityClientId": CLIENT_ID,
    "serviceBusNamespaceFqdn": "apreg-sb.servicebus.windows.net",
    "profilesJson": '{"profiles": {"standard": {"groupTag": "Standard", "groupId": "11111111-1111-4111-8111-111111111111"}}}',
    "lockDuration": "PT5M",
    "duplicateDetectionWindow": "PT1H",
    "graphWriteBudget": "intune=100/20,entra=3000/150",
    "queueName": "device-registrations",
    "reconcileSchedule": "0 */5 * * * *",
    "uploadEventsQueue": "upload-events",
    "deadLetterContainer": "upload-events-deadletter",
}


class FakeCredential:
    def get_token(self, *scopes, **kwargs):
        raise AssertionError("no token is requested while building clients")


def bicep_app_settings() -> dict[str, str]:
    """The app settings as Azure would hold them, for the string literals and plain parameters."""
    settings = {}
    for name, expression in APP_SETTING_VALUE.findall((INFRA / "modules" / "functionapp.bicep").read_text()):
        if expression.startswith("'") and expression.endswith("'") and "${" not in expression:
            settings[name] = expression[1:-1]
        elif expression in PARAMS:
            settings[name] = PARAMS[expression]
        elif expression == "string(maxUploadBytes)":
            settings[name] = str(512 * 1024 * 1024)
        elif expression == "string(maxDeliveryCount)":
            settings[name] = "5"
    return settings


def test_host_and_data_storage_are_two_identity_based_accounts():
    """AzureWebJobsStorage is the host's own account (keys, package, host queues); uploads, reports and state
    live in the data account (DataStorage), which partners reach through their SAS. Never the same one."""
    settings = bicep_app_settings()
    host = {k: v for k, v in settings.items() if k.startswith("AzureWebJobsStorage")}
    data = {k: v for k, v in settings.items() if k.startswith("DataStorage")}
    assert host == {
        "AzureWebJobsStorage__blobServiceUri": PARAMS["hostBlobServiceUri"],
        "AzureWebJobsStorage__queueServiceUri": PARAMS["hostQueueServiceUri"],
        "AzureWebJobsStorage__tableServiceUri": PARAMS["hostTableServiceUri"],
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
    }
    assert data == {
        "DataStorage__blobServiceUri": PARAMS["blobServiceUri"],
        "DataStorage__queueServiceUri": PARAMS["queueServiceUri"],  # the blob trigger's poison queue
        "DataStorage__tableServiceUri": PARAMS["tableServiceUri"],
        "DataStorage__credential": "managedidentity",
        "DataStorage__clientId": CLIENT_ID,
    }
    # __accountName would be a second, different way to name the same account: not set.
    assert not any(k.endswith("__accountName") for k in settings)
    main = (INFRA / "main.bicep").read_text()
    assert "hostBlobServiceUri: hostStorage.outputs.blobEndpoint" in main
    assert "blobServiceUri: storage.outputs.blobEndpoint" in main
    assert "deploymentContainerUrl: '${hostStorage.outputs.blobEndpoint}app-package'" in main


def test_the_blob_sdk_binding_resolves_the_data_account_from_the_trigger_connection(monkeypatch):
    """The SDK-type binding builds the BlobClient it hands our function from the trigger's connection
    (DataStorage; its own resolver, azurefunctions-extensions-bindings-blob), with the user-assigned identity."""
    from azurefunctions.extensions.bindings.blob import utils

    source = (Path(__file__).resolve().parents[2] / "function_app.py").read_text()
    assert "connection=DATA_STORAGE" in source
    for name in [n for n in os.environ if n.startswith(("AzureWebJobsStorage", "DataStorage"))]:
        monkeypatch.delenv(name)
    for name, value in bicep_app_settings().items():
        if name.startswith(("AzureWebJobsStorage", "DataStorage")):
            monkeypatch.setenv(name, value)
    assert utils.get_connection_string("DataStorage") == PARAMS["blobServiceUri"]
    assert utils.using_user_managed_identity("DataStorage")
    made = []
    monkeypatch.setattr(utils, "ManagedIdentityCredential", lambda **kwargs: made.append(kwargs) or FakeCredential())
    client = utils.service_client_factory("DataStorage")
    assert client.url == PARAMS["blobServiceUri"] and made == [{"client_id": CLIENT_ID}]


def test_the_app_builds_its_storage_clients_from_the_data_account():
    from shared.storage import blob_service, queue_service, table_service

    settings = load_settings(bicep_app_settings())
    endpoints = settings.storage_endpoints
    assert settings.storage_connection is None and endpoints is not None
    assert endpoints.client_id == CLIENT_ID
    assert blob_service(settings).url.rstrip("/") == PARAMS["blobServiceUri"].rstrip("/")
    assert queue_service(settings).url.rstrip("/") == PARAMS["queueServiceUri"].rstrip("/")
    assert table_service(settings).url.rstrip("/") == PARAMS["tableServiceUri"].rstrip("/")


def test_the_app_never_puts_data_in_the_host_account():
    from shared.config import ConfigError

    settings = {k: v for k, v in bicep_app_settings().items() if not k.startswith("DataStorage")}
    with pytest.raises(ConfigError, match="DataStorage__blobServiceUri"):
        load_settings(settings)


def test_the_app_uses_the_user_assigned_identity_of_the_storage_settings(monkeypatch):
    import azure.identity

    from shared.storage import blob_service

    made = []
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda **kwargs: made.append(kwargs) or FakeCredential())
    blob_service(load_settings(bicep_app_settings()))
    assert made == [{"managed_identity_client_id": CLIENT_ID}]


@pytest.mark.parametrize(
    "missing",
    ["DataStorage__blobServiceUri", "DataStorage__queueServiceUri", "DataStorage__tableServiceUri"],
)
def test_identity_based_storage_needs_all_three_service_uris(missing):
    from shared.config import ConfigError

    settings = bicep_app_settings()
    del settings[missing]
    with pytest.raises(ConfigError, match=missing):
        load_settings(settings)


def test_telemetry_is_sent_with_the_apps_identity_and_never_with_the_ingestion_key():
    """Application Insights refuses key-only ingestion (local auth disabled); the Functions host signs its
    telemetry with the user-assigned identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), and that identity
    holds Monitoring Metrics Publisher on the component, assigned before the app starts."""
    monitoring = (INFRA / "modules" / "monitoring.bicep").read_text()
    component = re.search(
        r"resource appInsights 'Microsoft\.Insights/components@[^']+' = \{(.*?)\n\}", monitoring, re.S
    )
    assert component and re.search(r"^\s*DisableLocalAuth: true$", component.group(1), re.M)

    value = dict(APP_SETTING_VALUE.findall((INFRA / "modules" / "functionapp.bicep").read_text()))[
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
    ]
    evaluated = value.strip("'").replace("${identityClientId}", PARAMS["identityClientId"])
    assert evaluated == f"Authorization=AAD;ClientId={CLIENT_ID}"  # the documented form
    # The same identity as every other connection: its client id here, its principal id in the role.
    assert bicep_app_settings()["AzureWebJobsStorage__clientId"] == CLIENT_ID
    main = re.sub(r"\s+", " ", (INFRA / "main.bicep").read_text())
    assert "identityClientId: identity.outputs.clientId" in main and "principalId: identity.outputs.principalId" in main
    assert "appInsightsName: monitoring.outputs.appInsightsName" in main
    assert re.search(r"module functionApp '[^']+' = \{.*?dependsOn: \[ roles \]", main)

    roles = re.sub(r"\s+", " ", (INFRA / "modules" / "roles.bicep").read_text())
    assert "var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'" in roles  # built-in role id
    assignment = re.search(r"resource telemetryRole '[^']+' = \{(.*?)\} \}", roles)
    assert assignment, "no Monitoring Metrics Publisher assignment"
    body = assignment.group(1)
    assert "scope: appInsights" in body and "principalId: principalId" in body
    assert "roleDefinitions', monitoringMetricsPublisher)" in body
