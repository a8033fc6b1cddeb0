"""Shared pytest fixtures. The helpers themselves live in ``tests/helpers/``:
``datasets.py`` (the one toy-dataset builder), ``workflow.py`` (the one snakemake runner
and config helpers), ``reports.py`` (fake and real evaluation folders for the report
tests); test modules import them from there, never from each other."""

import os

import pytest
from dandi_stub import dandi_stub  # noqa: F401  (a stand-in DANDI API server, tests/dandi_stub.py)
from helpers.datasets import toy_dataset as _toy_dataset


def pytest_configure(config):
    """Under pytest-xdist (README's test command: two workers on a 2-core machine) each
    worker keeps torch, and the commands it starts, to one thread. With torch's default of
    one thread per core, the two workers' small ops spun on both cores each: test_cosmoothing.py
    alone took 131 s of wall and 135 s of CPU on one thread, 140 s of wall and 272 s of CPU
    on two, and about 600 s beside the other worker. Tests that need more threads set
    them (test_seeds_together.py); workflow jobs set their own (the rules' ``threads``)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        try:
            import torch
        except ImportError:
            return
        torch.set_num_threads(1)


@pytest.fixture
def toy_dataset():
    """The toy-dataset builder (:func:`helpers.datasets.toy_dataset`)."""
    return _toy_dataset


@pytest.fixture(scope="session")
def poisson_lrrnn(tmp_path_factory):
    """(dataset, lrRNN fit): a small simulated Poisson session (60 trials, 30 units, 8 held
    out), binned with history bins, and a short lrRNN fit of it (the smoothing posterior's
    tests)."""
    import disrnn
    from disrnn.data.binning import BinConfig, bin_session
    from disrnn.fit.config import FitConfig
    from disrnn.simulate import PRESETS, simulate_nwb

    root = tmp_path_factory.mktemp("cosmooth")
    path = simulate_nwb("rotation-limitcycle", root / "sim.nwb", seed=0, n_trials=60, n_units=30)
    bw = PRESETS["rotation-limitcycle"].bin_width
    config = BinConfig(
        bin_width=bw, trials="trials", heldout_fraction=0.25, split=(0.6, 0.2, 0.2), seed=0
    )
    ds = bin_session(path, config)
    cfg = FitConfig.create("lrRNN", groups=(4,), history=5, epochs=30, patience=10)
    fit_dir = disrnn.fit(ds, cfg, root / "fit", seed=0, device="cpu", progress=False)
    return ds, disrnn.load_fit(fit_dir)
