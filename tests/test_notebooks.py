"""Execute the notebooks on a small results folder made by the pipeline's Python API.

The folder follows the workflow's layout (``results/{session}/dataset.nc``,
``fits/{method}/seed{s}``, ``evals/{method}/seed{s}``) and is built by the same helper as
the report tests: a tiny simulated session, DisRNN, lrRNN and lrRNN+ICA, a few epochs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.reports import shared_real_results

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def small_results(tmp_path_factory):
    return shared_real_results(tmp_path_factory)["root"]


def test_there_is_a_notebook():
    assert ROOT.joinpath("notebooks", "explore_session.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, small_results, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    # parameters of the notebook's first code cell, through the environment
    monkeypatch.setenv("DISRNN_RESULTS", str(small_results))
    monkeypatch.setenv("DISRNN_EPOCHS", "3")
    monkeypatch.setenv("DISRNN_BETAS", "0,20")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=dict(os.environ))
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    # the figures were drawn: PNG outputs from the report's plotting functions and the sweep
    pngs = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(pngs) >= 3
    text = "\n".join(
        o.get("text", "") or str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert "sim_tiny" in text
    assert "J from the fit matches connectivity.nc" in text
    # the notebook wrote nothing into results/
    assert not [p for p in small_results.rglob("*") if "beta" in p.name]
