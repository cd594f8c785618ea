"""``partner add`` updates the configuration and yields a SAS that can write but not read or list."""

import json

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

from registrar.partner_cli import add_partner, local_sas_url
from shared.config import ConfigError

pytestmark = pytest.mark.integration


def test_add_partner_validates_and_writes_configuration(tmp_path):
    config = tmp_path / "profiles.json"
    config.write_text(
        json.dumps({"profiles": {"standard": {"groupTag": "S", "groupId": "11111111-1111-4111-8111-111111111111"}}})
    )
    document = add_partner(config, "fabrikam", ["standard"])
    assert document.partners["fabrikam"].profiles == ["standard"]
    assert json.loads(config.read_text())["partners"]["fabrikam"] == {"profiles": ["standard"]}
    with pytest.raises(ConfigError, match="unknown profile"):
        add_partner(config, "fabrikam", ["kiosk"])
    with pytest.raises(ConfigError):
        add_partner(config, "Bad_Id", ["standard"])
    assert "kiosk" not in config.read_text()  # a refused change leaves the file as it was


def test_local_sas_can_upload_but_not_read_or_list(azurite):
    url = local_sas_url(azurite.connection_string, "partner-fabrikam", hours=1)
    container = ContainerClient.from_container_url(url)
    container.upload_blob("standard/devices.csv", b"Device Serial Number\r\n")
    with pytest.raises(HttpResponseError) as listing:
        list(container.list_blobs())
    assert listing.value.status_code == 403
    with pytest.raises(HttpResponseError) as reading:
        container.download_blob("standard/devices.csv").readall()
    assert reading.value.status_code == 403
