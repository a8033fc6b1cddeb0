"""Shared pytest fixtures."""

from dandi_stub import dandi_stub  # noqa: F401  (a stand-in DANDI API server, tests/dandi_stub.py)
