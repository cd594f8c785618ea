"""The local host: Azurite, the Graph emulator and the same function code, without Core Tools."""
