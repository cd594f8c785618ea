"""The settings the app reads and the settings the Bicep sets must not drift apart."""

import re
from pathlib import Path

import function_app  # noqa: F401 - the bindings' %SETTING% names are part of what the app reads
from shared.config import LOCAL_ONLY_SETTINGS, PLATFORM_SETTINGS, SETTING_NAMES

INFRA = Path(__file__).resolve().parents[2] / "infra"
APP_SETTING = re.compile(r"\{\s*name:\s*'([^']+)'\s*,\s*value:")


def bicep_settings() -> set[str]:
    return set(APP_SETTING.findall((INFRA / "modules" / "functionapp.bicep").read_text()))


def test_every_setting_the_app_needs_in_azure_is_set_by_bicep():
    needed = set(SETTING_NAMES) - set(LOCAL_ONLY_SETTINGS)
    # Azure uses the identity-based forms, never a connection string:
    assert "AzureWebJobsStorage__accountName" in needed and "ServiceBusConnection__fullyQualifiedNamespace" in needed
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
    assert "'partner-${p.id}'" in main and "['device-uploads']" in main
    events = (INFRA / "modules" / "eventgrid.bicep").read_text()
    assert "Host.Functions.ingest_${replace(container, '-', '_')}" in events  # function_app.py's names
