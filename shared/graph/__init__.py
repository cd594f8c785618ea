"""Microsoft Graph adapter: client construction, credentials, and the Autopilot/Entra calls we make."""
