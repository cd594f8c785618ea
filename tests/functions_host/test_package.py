"""The deployable package: built the way Core Tools builds it (the project directory minus .funcignore,
gitignore-style), with only requirements.txt installed, and indexed by the Python worker from there.

What this catches: a module the app imports that the package leaves out (registrar/, a dev-only library),
a runtime dependency missing from requirements.txt (the SDK-type blob extension), and everything the
worker's indexing rejects (tests/functions_host/test_worker_indexing.py), all before a publish.

The install goes to build/package-test/<hash of requirements.txt and Python version>/ (gitignored) and is
reused while requirements.txt is unchanged: the first run in a clean clone installs, later runs do not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pathspec
import pytest

from .test_worker_indexing import PROFILES, expected_functions
from .worker import base_env, build_protos, index_app

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "package-test"
PACKAGE_TOP_LEVEL = {"function_app.py", "host.json", "requirements.txt", "functions", "shared"}

pytestmark = pytest.mark.slow


def package_files(root: Path = ROOT) -> list[str]:
    """The files Core Tools would publish: every file under ``root`` not matched by .funcignore."""
    spec = pathspec.GitIgnoreSpec.from_lines((root / ".funcignore").read_text().splitlines())
    files = []
    for directory, dirs, names in os.walk(root):
        relative = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        # A file under an excluded directory cannot be re-included (gitignore): prune whole subtrees.
        dirs[:] = sorted(d for d in dirs if not spec.match_file(prefix + d + "/"))
        files += [prefix + n for n in sorted(names) if not spec.match_file(prefix + n)]
    return files


def build_zip(dest: Path) -> Path:
    archive = dest / "package.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in package_files():
            zf.write(ROOT / name, name)
    return archive


def install_requirements(requirements: Path) -> Path:
    key = hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()[:16]
    target = CACHE / key
    if (target / ".complete").exists():
        return target
    staging = CACHE / f"{key}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(  # noqa: S603 - fixed argv: pip into a fresh target, nothing else installed
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
         "--target", str(staging), "-r", str(requirements)],
        check=True,
        timeout=900,
    )
    (staging / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def worker_libraries(dest: Path) -> Path:
    """The worker's own libraries, as the host ships them beside the app: the worker and protobuf only."""
    import azure_functions_runtime
    import google.protobuf

    dest.mkdir()
    (dest / "azure_functions_runtime").symlink_to(Path(azure_functions_runtime.__file__).parent)
    (dest / "google").mkdir()
    (dest / "google" / "protobuf").symlink_to(Path(google.protobuf.__file__).parent)
    upb = Path(google.protobuf.__file__).parent.parent / "_upb"
    if upb.exists():
        (dest / "google" / "_upb").symlink_to(upb)
    return dest


def test_funcignore_leaves_only_the_app():
    files = package_files()
    assert {f.split("/")[0] for f in files} == PACKAGE_TOP_LEVEL
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in files if f.endswith(".so")]  # the hash walk built for this machine, not Azure's


def test_the_published_package_installs_from_requirements_and_is_indexed_by_the_worker(tmp_path):
    archive = build_zip(tmp_path)
    app = tmp_path / "wwwroot"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(app)
    site = install_requirements(app / "requirements.txt")
    protos = build_protos(tmp_path / "rpc")
    worker = worker_libraries(tmp_path / "worker")
    # A fresh interpreter without site-packages: the stdlib, the package, its requirements, the worker.
    result = index_app(
        app,
        protos,
        base_env(REGISTRAR_PROFILES=json.dumps(PROFILES)),
        python=sys._base_executable,
        paths=[site, worker],
        isolated=True,
    )
    assert result.ok, result.error + result.stderr[-3000:]
    assert set(result.functions) == expected_functions(["contoso", "fabrikam-eu"])
    assert all(fn["deferred"] == ["client"] for name, fn in result.functions.items() if name.startswith("ingest_"))
