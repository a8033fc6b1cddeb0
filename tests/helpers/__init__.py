"""Test helpers shared through tests/conftest.py (see its docstring)."""
