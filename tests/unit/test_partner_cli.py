"""``partner remove``: the partner leaves the one profiles document, its container stays, and the command
says how to finish in Azure (redeploy, sync triggers, revoke user-delegation SAS by rotating the keys)."""

from __future__ import annotations

import json

import pytest

import registrar.partner_cli as partner_cli
from registrar.__main__ import main
from shared.config import ConfigError, load_profiles

GROUP = "11111111-1111-4111-8111-111111111111"
DOCUMENT = {
    "profiles": {"standard": {"groupTag": "S", "groupId": GROUP}, "kiosk": {"groupTag": "K", "groupId": GROUP}},
    "partners": {"contoso": {"profiles": ["standard"]}, "fabrikam": {"profiles": ["standard", "kiosk"]}},
}


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setattr(partner_cli, "running_dev_state", lambda: None)  # no local stack
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(DOCUMENT))
    return path


def test_remove_takes_only_that_partner_out_of_the_document(config):
    document = partner_cli.remove_partner(config, "contoso")
    assert sorted(document.partners) == ["fabrikam"]
    written = json.loads(config.read_text())
    assert written == {"profiles": DOCUMENT["profiles"], "partners": {"fabrikam": DOCUMENT["partners"]["fabrikam"]}}
    assert load_profiles({"REGISTRAR_PROFILES_FILE": str(config)}).partners.keys() == {"fabrikam"}


def test_remove_refuses_an_unknown_partner_and_leaves_the_file_alone(config):
    before = config.read_bytes()
    with pytest.raises(ConfigError) as refused:
        partner_cli.remove_partner(config, "northwind")
    assert str(refused.value) == (
        f"no partner 'northwind' in {config} (partners there: contoso, fabrikam); nothing changed"
    )
    assert config.read_bytes() == before


def test_the_command_removes_the_partner_and_prints_every_step_to_finish_in_azure(config, capsys):
    assert main(["partner", "remove", "contoso", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "contoso" not in json.loads(config.read_text())["partners"]
    assert "its container partner-contoso (uploads and reports) is kept" in out
    # 1. redeploy from the same document, 2. sync triggers and check the functions are gone
    assert "az deployment group create -g <resource group> -f infra/main.bicep -p infra/main.bicepparam" in out
    assert "/syncfunctiontriggers?api-version=" in out and "az functionapp function list" in out
    assert "ingest_partner_contoso" in out and "status_partner_contoso_devices" in out
    # 3. its Event Grid subscriptions (both kinds) go
    assert "event-subscription delete" in out
    assert "-n ingest-partner-contoso" in out and "-n journal-partner-contoso" in out
    # 4. SAS are user-delegation SAS: revoked by rotating the account's user-delegation keys, which hits all
    assert "az storage account revoke-delegation-keys -n <storage account> -g <resource group>" in out
    assert "EVERY user-delegation SAS" in out and "issue new SAS to the remaining partners" in out
    # the container is never deleted by the command
    assert "az storage container delete" in out and "yourself" in out


def test_the_command_refuses_an_unknown_partner_with_exit_2(config, capsys):
    before = config.read_bytes()
    assert main(["partner", "remove", "Contoso", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err
        == f"registrar: no partner 'Contoso' in {config} (partners there: contoso, fabrikam); nothing changed\n"
    )
    assert config.read_bytes() == before


def test_add_prints_redeploy_and_trigger_sync_from_the_one_document(config, capsys):
    assert main(["partner", "add", "northwind", "--profiles", "kiosk", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert json.loads(config.read_text())["partners"]["northwind"] == {"profiles": ["kiosk"]}
    assert "partners: [" not in out  # no second list of partners to edit (the old Bicep parameter)
    assert "infra/main.bicepparam" in out and "/syncfunctiontriggers?api-version=" in out
    assert "check that ingest_partner_northwind is listed" in out
    assert "--as-user" in out and "--permissions cw" in out


def test_a_removed_partner_can_be_added_back(config):
    partner_cli.remove_partner(config, "fabrikam")
    with pytest.raises(ConfigError, match="no partner 'fabrikam'"):
        partner_cli.remove_partner(config, "fabrikam")
    document = partner_cli.add_partner(config, "fabrikam", ["kiosk"])
    assert document.partners["fabrikam"].profiles == ["kiosk"] and "contoso" in document.partners
