"""Azure Functions entry point: wiring only (triggers and bindings). Logic lives in ``functions/``.

The blob-ingest, Service Bus register and timer reconcile triggers are added here by the registration
pipeline; until then the app exposes no triggers.
"""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
