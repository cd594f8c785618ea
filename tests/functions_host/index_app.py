"""Run inside a fresh interpreter by worker.py: ``index_app.py APP_DIR PROTOS_DIR [PATH ...]``.

Does what the Functions host asks of the Python worker at start-up: a ``WorkerInitRequest`` for the app
directory (the worker imports ``function_app.py``, indexes every function, validates each binding against
its annotation, and builds the ``RpcFunctionMetadata`` the host registers), then a
``FunctionsMetadataRequest``. Prints one JSON line: ok, the worker's error message, and per function its
raw bindings and which parameters use SDK-type (deferred) bindings.
"""

import asyncio
import json
import sys
import types


def main() -> int:
    app_dir, protos_dir, *paths = sys.argv[1:]
    sys.path[:0] = [app_dir, *paths, protos_dir]

    import azure_functions_rpc as protos
    from azure_functions_runtime import handle_event

    init = protos.StreamingMessage(
        worker_init_request=protos.WorkerInitRequest(function_app_directory=app_dir, capabilities={})
    )
    request = types.SimpleNamespace(request=init, properties={"host": "127.0.0.1", "protos": protos})
    response = asyncio.run(handle_event.worker_init_request(request))
    if response.result.status != protos.StatusResult.Success:
        print(json.dumps({"ok": False, "error": response.result.exception.message}))
        return 1
    metadata = asyncio.run(handle_event.functions_metadata_request(request))
    functions = {}
    for fn in metadata.function_metadata_results or []:
        info = handle_event._functions.get_function(fn.function_id)
        functions[fn.name] = {
            "bindings": [json.loads(b) for b in fn.raw_bindings],
            "deferred": sorted(n for n, t in info.input_types.items() if t.deferred_bindings_enabled),
            "pytypes": {n: f"{t.pytype.__module__}.{t.pytype.__qualname__}" for n, t in info.input_types.items()
                        if isinstance(t.pytype, type)},
        }
    print(json.dumps({"ok": True, "functions": functions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
