"""One smoothing posterior for the fits that share W (disrnn.evaluation.posterior_metrics):
LINT and lrRNN+ICA of an lrRNN get its posterior, and their evaluations reuse its metrics
only when the data, seed and network agree."""

import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from disrnn.evaluation.cosmoothing import fit_smoothing_posterior  # noqa: E402
from disrnn.evaluation.posterior_metrics import (  # noqa: E402
    POSTERIOR_KEYS,
    posterior_difference,
    posterior_key,
    shared_posterior_metrics,
    smoothing_posterior_metrics,
)
from disrnn.fit.posthoc import ica_transform, lint_transform  # noqa: E402

SHORT = {"epochs": 5, "lags": 5}


def _transformed(fit, ds, kind):
    """A copy of ``fit`` re-split by the post-hoc transform ``kind`` (lint or ica), with
    its Fit attributes (W, bias) recomputed from the new module."""
    from disrnn.fit.folder import Fit

    module = copy.deepcopy(fit.module)
    if kind == "lint":
        lint_transform(module)
    else:
        lat = fit.latents(ds.isel(trial=np.flatnonzero(ds["split"].values == "train")))
        z = lat.values.reshape(-1, lat.shape[-1])
        ica_transform(module, z[np.isfinite(z).all(1)], seed=0)
    return Fit(fit.path, fit.meta, module, fit.info)


@pytest.fixture(scope="module")
def fits(poisson_lrrnn):
    ds, fit = poisson_lrrnn
    return ds, fit, {k: _transformed(fit, ds, k) for k in ("lint", "ica")}


def test_lint_and_ica_of_a_fit_get_its_posterior(fits):
    """LINT (b' = 0, a' = a + A b) and ICA (A M, M^-1 B, M^-1 b) change A, B, a, b but not W
    or A b + a: the posterior's predictions equal the lrRNN's, after training too."""
    ds, fit, other = fits
    want = fit_smoothing_posterior(fit, ds, seed=0, **SHORT).predict(ds).values
    for kind, f in other.items():
        assert np.abs(f.module.A.detach().numpy() - fit.module.A.detach().numpy()).max() > 1e-2
        assert posterior_difference(f, fit) is None, kind
        got = fit_smoothing_posterior(f, ds, seed=0, **SHORT).predict(ds).values
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-5, err_msg=kind)


def test_a_different_network_is_told_apart(fits):
    """W changed by 1e-3 of its size, or the bias A b + a moved: not the same posterior."""
    ds, fit, _ = fits
    moved = copy.deepcopy(fit)
    with torch.no_grad():
        moved.module.A.mul_(1.001)
    assert "W differs" in posterior_difference(moved, fit)
    shifted = copy.deepcopy(fit)
    with torch.no_grad():
        shifted.module.a.add_(0.1)
    assert "A b + a differs" in posterior_difference(shifted, fit)


def _source(folder, fit, ds, seed, **values):
    """An evaluation folder whose metrics.json holds a posterior of ``fit`` on ``ds``."""
    folder.mkdir()
    m = {k: values.get(k, 0.5 + i / 10) for i, k in enumerate(POSTERIOR_KEYS)}
    m.update(fit_dir=str(fit.path), smoothing_posterior_key=posterior_key(ds, seed))
    (folder / "metrics.json").write_text(json.dumps(m))
    return folder


def test_evaluation_reuses_a_matching_posterior(fits, tmp_path):
    """The ICA fit's posterior keys are the source's, with 0 s spent and the source named;
    a source trained with another seed, or on other data, is not reused."""
    ds, fit, other = fits
    src = _source(tmp_path / "lrRNN", fit, ds, seed=0)
    theirs = json.loads((src / "metrics.json").read_text())
    got = smoothing_posterior_metrics(other["ica"], ds, seed=0, share_from=src)
    for k in POSTERIOR_KEYS:
        want = 0.0 if k == "smoothing_posterior_seconds" else theirs[k]
        assert got[k] == want, k
    assert got["smoothing_posterior_from"] == str(src.resolve())
    assert shared_posterior_metrics(other["lint"], ds, 1, src) is None  # other seed
    fewer = ds.copy(deep=True)
    fewer["activity"][0, 0, 0] += 1
    assert shared_posterior_metrics(other["lint"], fewer, 0, src) is None  # other data
    assert shared_posterior_metrics(other["lint"], ds, 0, tmp_path / "missing") is None
