"""Autopilot Registrar's domain and its adapters.

The ``intake`` subpackage is the pure core (no I/O beyond a byte stream); adapters for Graph, storage and
queues live beside it.
"""
