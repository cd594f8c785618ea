"""Configuration is validated at start-up, with errors that name the setting and the fix."""

import json

import pytest

from shared.config import ConfigError, load_settings

GOOD = {
    "profiles": {"standard": {"groupTag": "Std", "groupId": "11111111-1111-4111-8111-111111111111"}},
    "partners": {"contoso": {"profiles": ["standard"]}},
}


def env(**overrides):
    base = {"REGISTRAR_PROFILES": json.dumps(GOOD), "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_valid_settings_and_defaults():
    settings = load_settings(env())
    assert settings.containers == ["device-uploads", "partner-contoso"]
    assert (settings.queue_name, settings.graph_credential) == ("device-registrations", "managed-identity")
    assert settings.profiles.profiles["standard"].group_tag == "Std"


def test_identity_based_storage_in_azure():
    """The app's clients use the data account (DataStorage); AzureWebJobsStorage__* is the host's own."""
    settings = load_settings(
        env(
            AzureWebJobsStorage=None,
            AzureWebJobsStorage__blobServiceUri="https://apreghost.blob.core.windows.net/",
            AzureWebJobsStorage__queueServiceUri="https://apreghost.queue.core.windows.net/",
            AzureWebJobsStorage__tableServiceUri="https://apreghost.table.core.windows.net/",
            DataStorage__blobServiceUri="https://apregst.blob.core.windows.net/",
            DataStorage__queueServiceUri="https://apregst.queue.core.windows.net",
            DataStorage__tableServiceUri="https://apregst.table.core.windows.net",
            DataStorage__credential="managedidentity",
            DataStorage__clientId="cid",
        )
    )
    assert settings.storage_connection is None and settings.host_storage_connection is None
    endpoints = settings.storage_endpoints
    assert endpoints.blob == "https://apregst.blob.core.windows.net" and endpoints.client_id == "cid"


def test_the_hosts_storage_is_never_used_as_the_data_account():
    with pytest.raises(ConfigError, match="DataStorage__blobServiceUri"):
        load_settings(
            env(AzureWebJobsStorage=None, AzureWebJobsStorage__blobServiceUri="https://apreghost.blob.core.windows.net/")
        )


def test_locally_one_connection_string_serves_both_accounts_unless_data_storage_is_set():
    assert load_settings(env()).storage_connection == "UseDevelopmentStorage=true"
    split = load_settings(env(DataStorage="UseDevelopmentStorage=true;x=data"))
    assert split.storage_connection.endswith("x=data") and split.host_storage_connection == "UseDevelopmentStorage=true"


def test_max_delivery_count_comes_from_the_queue_setting():
    assert load_settings(env()).max_delivery_count == 5
    assert load_settings(env(SERVICEBUS_MAX_DELIVERY_COUNT="7")).max_delivery_count == 7
    with pytest.raises(ConfigError, match="SERVICEBUS_MAX_DELIVERY_COUNT"):
        load_settings(env(SERVICEBUS_MAX_DELIVERY_COUNT="0"))


def test_queue_settings_outside_what_service_bus_allows_are_refused():
    """Lock duration PT5S-PT5M ("The maximum value for LockDuration is 5 minutes") and duplicate detection
    window PT20S-P7D (duplicate-detection): the local stand-in must not grant what Azure cannot."""
    settings = load_settings(env(SERVICEBUS_LOCK_DURATION="PT1M", SERVICEBUS_DUPLICATE_WINDOW="P7D"))
    assert settings.lock_duration_seconds == 60 and settings.duplicate_window_seconds == 7 * 86400
    for name, bad in (
        ("SERVICEBUS_LOCK_DURATION", "PT10M"),
        ("SERVICEBUS_LOCK_DURATION", "PT1S"),
        ("SERVICEBUS_DUPLICATE_WINDOW", "PT0S"),
        ("SERVICEBUS_DUPLICATE_WINDOW", "P30D"),
    ):
        with pytest.raises(ConfigError, match=name):
            load_settings(env(**{name: bad}))


def test_clean_up_time_per_timer_run_is_a_bounded_setting():
    assert load_settings(env()).cleanup_seconds == 240  # until about a minute before the next 5-minute run
    assert load_settings(env(RECONCILE_CLEANUP_SECONDS="20")).cleanup_seconds == 20
    for bad in ("-1", "forever", "5000"):
        with pytest.raises(ConfigError, match="RECONCILE_CLEANUP_SECONDS"):
            load_settings(env(RECONCILE_CLEANUP_SECONDS=bad))


def test_account_name_alone_is_not_enough():
    """__accountName is not one of the forms this app uses: say which settings to set instead."""
    with pytest.raises(ConfigError, match="blobServiceUri"):
        load_settings(env(AzureWebJobsStorage=None, DataStorage__accountName="apregst"))


@pytest.mark.parametrize(
    "change, words",
    [
        ({"REGISTRAR_PROFILES": None}, "set REGISTRAR_PROFILES"),
        ({"REGISTRAR_PROFILES": "{not json"}, "not valid JSON"),
        ({"REGISTRAR_PROFILES": json.dumps({"profiles": {}})}, "at least one profile"),
        (
            {
                "REGISTRAR_PROFILES": json.dumps(
                    {"profiles": {"std": {"groupTag": "bad/tag", "groupId": GOOD["profiles"]["standard"]["groupId"]}}}
                )
            },
            "groupTag",
        ),
        (
            {"REGISTRAR_PROFILES": json.dumps({"profiles": {"std": {"groupTag": "ok", "groupId": "not-a-guid"}}})},
            "GUID",
        ),
        (
            {"REGISTRAR_PROFILES": json.dumps({**GOOD, "partners": {"contoso": {"profiles": ["kiosk"]}}})},
            "unknown profile",
        ),
        (
            {"REGISTRAR_PROFILES": json.dumps({**GOOD, "partners": {"Con Toso": {"profiles": ["standard"]}}})},
            "partner id",
        ),
        ({"AzureWebJobsStorage": None}, "AzureWebJobsStorage"),
        ({"GRAPH_CREDENTIAL": "password"}, "GRAPH_CREDENTIAL"),
        ({"MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES"),
    ],
)
def test_bad_configuration_names_the_setting(change, words):
    with pytest.raises(ConfigError) as info:
        load_settings(env(**change))
    assert words in str(info.value)


def test_profiles_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(env(REGISTRAR_PROFILES=None, REGISTRAR_PROFILES_FILE=str(tmp_path / "missing.json")))
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(GOOD))
    assert load_settings(env(REGISTRAR_PROFILES=None, REGISTRAR_PROFILES_FILE=str(path))).profiles.partners
