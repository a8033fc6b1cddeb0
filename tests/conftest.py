"""Shared pytest fixtures. The helpers themselves live in ``tests/helpers/``:
``datasets.py`` (the one toy-dataset builder), ``workflow.py`` (the one snakemake runner
and config helpers), ``reports.py`` (fake and real evaluation folders for the report
tests); test modules import them from there, never from each other."""

import pytest
from dandi_stub import dandi_stub  # noqa: F401  (a stand-in DANDI API server, tests/dandi_stub.py)
from helpers.datasets import toy_dataset as _toy_dataset


@pytest.fixture
def toy_dataset():
    """The toy-dataset builder (:func:`helpers.datasets.toy_dataset`)."""
    return _toy_dataset
