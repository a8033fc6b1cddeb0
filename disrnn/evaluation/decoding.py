"""Cross-validated decoding from latents (any fit's, or PCA's): a trial's condition, and a
behavior variable per bin and from the latents' running sum."""

from __future__ import annotations

import numpy as np

from disrnn.evaluation.metrics import ridge_decoding_r2

__all__ = ["condition_decoding", "latent_behavior_r2", "running_sum"]


def _classifier(seed: int, C: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed)
    )


def _accuracy(Xtr, ytr, Xte, yte, seed, C) -> float:
    from threadpoolctl import threadpool_limits

    if np.unique(ytr).size < 2:  # one class: predicting it is all a classifier can do
        return float(np.mean(yte == ytr[0]))
    with threadpool_limits(1):  # many small fits: threads only oversubscribe the machine
        model = _classifier(seed, C).fit(Xtr, ytr)
        return float(np.mean(model.predict(Xte) == yte))


def condition_decoding(
    latents, labels, split, seed: int = 0, train_splits=("train", "val"), C: float = 1.0
) -> dict:
    """Logistic-regression decoding of a per-trial label from latents, train -> test trials.

    Standardised features -> multinomial ``LogisticRegression`` (L2, ``C``, seeded), fitted on
    the trials whose split is in ``train_splits`` and scored on the ``test`` trials.

    Args:
        latents: (trial, time, latent) float array or DataArray (transposed by name); a bin
            whose latents are not finite (history bins, unobserved bins) is skipped.
        labels: (trial,) condition labels (any hashable dtype).
        split: (trial,) "train" / "val" / "test".
        seed: ``random_state`` of the classifier. C: inverse L2 strength.

    Returns:
        dict with ``condition_accuracy_by_time`` (time,) accuracy of a classifier per bin
        (NaN where fewer than 2 finite training or no finite test trials),
        ``condition_accuracy_time_mean`` (mean of those), ``condition_accuracy`` (one
        classifier on each trial's latents of all bins concatenated, bins with a non-finite
        value in any trial dropped), ``condition_chance`` (fraction of the test trials in
        their most common class), ``n_train``, ``n_test``.

    Raises:
        ValueError: shapes disagree, or no training or test trials.
    """
    if hasattr(latents, "dims") and hasattr(latents, "transpose"):
        latents = latents.transpose("trial", "time", ...).values
    z = np.asarray(latents, dtype=float)
    labels, split = np.asarray(labels), np.asarray(split).astype(str)
    if z.ndim != 3 or labels.shape != (z.shape[0],) or split.shape != (z.shape[0],):
        raise ValueError(
            f"latents must be (trial, time, latent) with one label and split per trial; got "
            f"latents {z.shape}, labels {labels.shape}, split {split.shape}"
        )
    tr, te = np.isin(split, list(train_splits)), split == "test"
    if not tr.any() or not te.any():
        raise ValueError(
            f"need training {tuple(train_splits)} and test trials; splits: {sorted(set(split))}"
        )
    finite = np.isfinite(z).all(2)  # (trial, time)
    by_time = np.full(z.shape[1], np.nan)
    for t in range(z.shape[1]):
        a, b = tr & finite[:, t], te & finite[:, t]
        if a.sum() >= 2 and b.any():
            by_time[t] = _accuracy(z[a, t], labels[a], z[b, t], labels[b], seed, C)
    cols = finite[tr | te].all(0)  # bins finite in every scored trial
    flat = z[:, cols].reshape(z.shape[0], -1)
    overall = (
        _accuracy(flat[tr], labels[tr], flat[te], labels[te], seed, C) if cols.any() else np.nan
    )
    _, counts = np.unique(labels[te], return_counts=True)
    return {
        "condition_accuracy_by_time": by_time,
        "condition_accuracy_time_mean": float(np.nanmean(by_time))
        if np.isfinite(by_time).any()
        else np.nan,
        "condition_accuracy": float(overall),
        "condition_chance": float(counts.max() / te.sum()),
        "n_train": int(tr.sum()),
        "n_test": int(te.sum()),
    }


def running_sum(z, ok) -> np.ndarray:
    """s_t = sum of z over the trial's scored bins up to and including t.

    Args:
        z: (trial, time, latent) float; ok: (trial, time) bool, the scored bins. A bin that
            is not scored, or whose latents are not finite, adds nothing to the sum.
    Returns:
        (trial, time, latent) float64 cumulative sums along time.
    """
    z = np.asarray(z, dtype=float)
    keep = np.asarray(ok, bool)[..., None] & np.isfinite(z)
    return np.where(keep, z, 0.0).cumsum(axis=1)


def latent_behavior_r2(z, ok, y, labels=None) -> dict:
    """Cross-validated ridge R^2 of one behavior variable from latents, on the scored bins.

    Each score is :func:`~disrnn.evaluation.metrics.ridge_decoding_r2` (standardised
    features, ``RidgeCV``, 5-fold ``GroupKFold`` over trials) with these features:

    - ``all``: the latents z_t of the bin;
    - ``running_sum``: s_t = sum_{t' <= t scored} z_t' (:func:`running_sum`, from the
      trial's first scored bin). Latents that carry a velocity integrate to a position,
      so a hand position may be read from their running sum rather than from them;
    - ``g<g>``, one per group of ``labels``: the latents of that group alone.

    Args:
        z: (trial, time, latent) float latents; ok: (trial, time) bool scored bins;
        y: (trial, time) or (trial, time, dim) float behavior; labels: (latent,) int
        group of each latent, or None for no per-group scores.
    Returns:
        {"all": R^2, "running_sum": R^2, "g<g>": R^2 ...} floats (NaN under 2 trials).
    """
    z, ok = np.asarray(z, dtype=float), np.asarray(ok, bool)
    y = np.asarray(y, dtype=float)
    y = y.reshape(y.shape[0], y.shape[1], -1)
    if z.ndim != 3 or ok.shape != z.shape[:2] or y.shape[:2] != z.shape[:2]:
        raise ValueError(
            f"latents (trial, time, latent) {z.shape}, scored bins {ok.shape} and behavior "
            f"{y.shape} must share (trial, time)"
        )
    trial = np.broadcast_to(np.arange(z.shape[0])[:, None], ok.shape)[ok]
    mu, yy = z[ok], y[ok]
    out = {
        "all": ridge_decoding_r2(mu, yy, trial),
        "running_sum": ridge_decoding_r2(running_sum(z, ok)[ok], yy, trial),
    }
    if labels is not None:
        labels = np.asarray(labels).astype(int)
        for g in np.unique(labels):
            out[f"g{g}"] = ridge_decoding_r2(mu[:, labels == g], yy, trial)
    return out
