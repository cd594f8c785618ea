"""function_app.py as the Python worker indexes it at start-up on Azure: every function, per-partner ones
included, passes the worker's own binding validation, and what the worker rejects fails here too.

One failure in indexing stops the whole app on Azure (no function runs, and the blobs_extension key the
Event Grid subscriptions need never exists), so these tests index the real file, not a model of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .worker import base_env, build_protos, index_app

ROOT = Path(__file__).resolve().parents[2]
GROUP = "11111111-1111-4111-8111-111111111111"
PROFILES = {
    "profiles": {"standard": {"groupTag": "Standard", "groupId": GROUP}},
    "partners": {"contoso": {"profiles": ["standard"]}, "fabrikam-eu": {"profiles": ["standard"]}},
}


@pytest.fixture(scope="session")
def protos_dir(tmp_path_factory):
    return build_protos(tmp_path_factory.mktemp("rpc"))


def expected_functions(partners: list[str]) -> set[str]:
    names = {"ingest_device_uploads", "register", "reconcile", "status_devices", "status_upload", "portal"}
    for partner in partners:
        suffix = partner.replace("-", "_")
        names |= {f"ingest_partner_{suffix}", f"status_partner_{suffix}_devices", f"status_partner_{suffix}_upload"}
    return names


def test_every_function_of_the_app_is_indexed_by_the_worker(protos_dir):
    result = index_app(ROOT, protos_dir, base_env(REGISTRAR_PROFILES=json.dumps(PROFILES)))
    assert result.ok, result.error + result.stderr[-2000:]
    assert set(result.functions) == expected_functions(["contoso", "fabrikam-eu"])
    for name, fn in result.functions.items():
        trigger = fn["bindings"][0]
        if name.startswith("ingest_"):
            # SDK-type binding: the worker hands over a BlobClient, the host reads no byte of the blob.
            assert fn["deferred"] == ["client"], fn
            assert fn["pytypes"]["client"].startswith("azurefunctions.extensions.bindings.blob.")
            assert trigger["type"] == "blobTrigger" and trigger["source"] == "EventGrid"
            assert trigger["properties"] == {"SupportsDeferredBinding": True}
            assert trigger["connection"] == "DataStorage"  # the data account, not the host's storage
    register = result.functions["register"]["bindings"][0]
    # GA binding, batches, extension's default settlement (autoCompleteMessages from host.json).
    assert register["type"] == "serviceBusTrigger" and register["cardinality"] == "MANY"
    assert "autoCompleteMessages" not in register and result.functions["register"]["deferred"] == []


@pytest.mark.parametrize("profiles", ["{not json", None], ids=["broken", "missing"])
def test_a_broken_or_missing_profiles_setting_fails_indexing_loudly(protos_dir, profiles):
    """Changed on purpose (issue #12). It used to index without any partner function, so Event Grid's
    events for the partner containers were dropped by the host as FunctionNotFound and nobody noticed.
    Now indexing fails with the configuration error: the app shows no function at all and the worker's
    message (in Application Insights / Log stream) names the setting and what is wrong with it."""
    env = base_env(REGISTRAR_PROFILES=profiles) if profiles else base_env()
    result = index_app(ROOT, protos_dir, env)
    assert not result.ok
    assert "ConfigError" in result.error and "function app not indexed" in result.error, result.error
    assert ("not valid JSON" if profiles else "set REGISTRAR_PROFILES") in result.error


def _copy_of_the_app(tmp_path: Path, old: str, new: str) -> Path:
    source = (ROOT / "function_app.py").read_text()
    assert old in source
    (tmp_path / "function_app.py").write_text(source.replace(old, new))
    for package in ("functions", "shared"):
        (tmp_path / package).symlink_to(ROOT / package, target_is_directory=True)
    return tmp_path


def test_a_pep585_batch_annotation_in_the_real_app_fails_indexing(protos_dir, tmp_path):
    app = _copy_of_the_app(
        tmp_path, "messages: typing.List[func.ServiceBusMessage]", "messages: list[func.ServiceBusMessage]"
    )
    result = index_app(app, protos_dir, base_env(REGISTRAR_PROFILES=json.dumps(PROFILES)))
    assert not result.ok
    assert "register" in result.error and "invalid non-type annotation" in result.error


TINY_APP = """
import typing
import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

app = func.FunctionApp()

@app.function_name("f")
{decorator}
def f({parameter}) -> None:
    pass
"""
SERVICE_BUS = '@app.service_bus_queue_trigger(arg_name="messages", queue_name="q", connection="C", cardinality=func.Cardinality.MANY)'
BLOB = '@app.blob_trigger(arg_name="client", path="c/{{name}}", connection="AzureWebJobsStorage", source=func.BlobSource.EVENT_GRID)'


@pytest.mark.parametrize(
    ("decorator", "parameter", "error"),
    [
        pytest.param(SERVICE_BUS, "messages: typing.List[func.ServiceBusMessage]", None, id="typing.List-accepted"),
        pytest.param(SERVICE_BUS, "messages: list[func.ServiceBusMessage]", "invalid non-type annotation", id="pep585-list-rejected"),
        pytest.param(SERVICE_BUS, "messages: func.HttpRequest", "do not match", id="wrong-type-rejected"),
        pytest.param(BLOB, "client: blob.BlobClient", None, id="sdk-type-blob-accepted"),
        pytest.param(BLOB, "client: func.InputStream", None, id="inputstream-accepted-not-deferred"),
        pytest.param(BLOB, "blob_client: blob.BlobClient", "not in the function definition", id="name-mismatch-rejected"),
    ],
)
def test_the_worker_accepts_and_rejects_annotations_as_on_azure(protos_dir, tmp_path, decorator, parameter, error):
    (tmp_path / "function_app.py").write_text(TINY_APP.format(decorator=decorator, parameter=parameter))
    result = index_app(tmp_path, protos_dir, base_env())
    if error is None:
        assert result.ok, result.error
        deferred = result.functions["f"]["deferred"]
        assert deferred == (["client"] if "blob.BlobClient" in parameter else [])
    else:
        assert not result.ok
        assert error in result.error, result.error


def test_the_harness_is_the_worker_not_a_copy():
    import azure_functions_runtime.functions as worker_functions

    assert "site-packages" in worker_functions.__file__
    assert "invalid non-type annotation" in Path(worker_functions.__file__).read_text()
