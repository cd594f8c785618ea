"""Index a function app with the Python language worker's own code, in a fresh interpreter.

The worker is ``azure-functions-runtime`` (requirements-worker.txt): the worker's indexing and binding
validation as Microsoft publishes it on PyPI. The host talks to it in FunctionRpc messages; those are
generated here from the host's own ``FunctionRpc.proto`` (``protos/``, vendored from
Azure/azure-functions-python-worker) with grpcio-tools, so the worker builds real ``RpcFunctionMetadata``.

Each indexing runs in its own subprocess, like a worker process starting: the worker caches the deferred
(SDK-type) binding registry per process, and one app's imports must not leak into the next.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTOS = HERE / "protos"
DRIVER = HERE / "index_app.py"
RPC_PACKAGE = "azure_functions_rpc"


def build_protos(dest: Path) -> Path:
    """Generate the RPC messages into ``dest/azure_functions_rpc`` (a package, so the proto's ``shared/``
    and ``identity/`` imports cannot collide with the app's own ``shared`` package)."""
    from grpc_tools import protoc

    package = dest / RPC_PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    sources = ["FunctionRpc.proto", "identity/ClaimsIdentityRpc.proto", "shared/NullableTypes.proto"]
    code = protoc.main(["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={package}", *sources])
    if code != 0:
        raise RuntimeError(f"protoc failed ({code})")
    for sub in ("identity", "shared"):
        (package / sub / "__init__.py").touch()
    for generated in package.rglob("*_pb2.py"):
        text = re.sub(r"^from (identity|shared) import", rf"from {RPC_PACKAGE}.\1 import", generated.read_text(), flags=re.M)
        generated.write_text(text)
    (package / "__init__.py").write_text("from .FunctionRpc_pb2 import *  # noqa: F403\n")
    return dest


@dataclass
class IndexResult:
    ok: bool
    error: str = ""
    functions: dict[str, dict] = field(default_factory=dict)  # name -> {"bindings": [...], "deferred": [...]}
    stderr: str = ""


def index_app(
    app_dir: Path,
    protos_dir: Path,
    env: dict[str, str],
    *,
    python: str = sys.executable,
    paths: list[Path] | None = None,
    isolated: bool = False,
    timeout: float = 120,
) -> IndexResult:
    """Run the worker's start-up indexing (``worker_init_request``) on ``app_dir/function_app.py``.

    ``paths`` go on sys.path after the app (a package's ``.python_packages``, then the worker's own
    libraries). ``isolated`` starts the interpreter without site-packages (``-S``): only the stdlib, the
    app and ``paths``, as in a deployed package.
    """
    argv = [python, "-I"] + (["-S"] if isolated else []) + [str(DRIVER), str(app_dir), str(protos_dir)]
    argv += [str(p) for p in paths or []]
    completed = subprocess.run(  # noqa: S603 - fixed argv
        argv, env=env, cwd=app_dir, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return IndexResult(False, f"worker process failed ({completed.returncode})", stderr=completed.stderr)
    result = json.loads(lines[-1])
    return IndexResult(result["ok"], result.get("error", ""), result.get("functions", {}), completed.stderr)


def base_env(**extra: str) -> dict[str, str]:
    """What a worker process gets: no PYTHONPATH, our settings only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "REGISTRAR_", "AzureWebJobs"))}
    env.update(extra)
    return env
