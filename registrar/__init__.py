"""Tools for running Autopilot Registrar locally: the CLI, the Graph emulator, the local host, samples."""
