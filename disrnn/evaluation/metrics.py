"""Evaluation metrics as pure numpy functions.

Conventions: ``x`` observed activity and ``rate``/``mean`` predictions are arrays of the same
shape, normally ``(trial, time, unit)`` (spike counts per bin, or continuous values);
``valid`` is a boolean array broadcastable to it (False = ignore: outside observation
intervals, history-only bins, non-finite predictions). Log-likelihoods are natural logs.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

__all__ = [
    "bits_per_spike",
    "corr_similarity",
    "gaussian_loglik",
    "mean_rate_stats",
    "nlb_decoding_r2",
    "null_shift",
    "poisson_loglik",
    "psth_r2",
    "r2_per_unit",
    "ridge_decoding_r2",
    "unit_correlations",
]

RATE_FLOOR = 1e-6  # expected counts per bin; predictions below are clipped (Poisson LL)


def _valid(x: np.ndarray, *preds, valid=None) -> np.ndarray:
    ok = np.isfinite(x)
    for p in preds:
        ok &= np.isfinite(p)
    if valid is not None:
        ok &= np.broadcast_to(np.asarray(valid, dtype=bool), x.shape)
    return ok


# ----------------------------------------------------------------------- likelihoods
def gaussian_loglik(x, mean, sd) -> np.ndarray:
    """Elementwise ``log N(x; mean, sd^2) = -1/2 ((x-mean)/sd)^2 - log sd - 1/2 log 2 pi``.

    Args:
        x, mean: float arrays of one shape; sd: positive, broadcastable (e.g. (unit,)).
    """
    x, mean, sd = (np.asarray(a, dtype=float) for a in (x, mean, sd))
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


def poisson_loglik(k, rate) -> np.ndarray:
    """Elementwise ``log Poisson(k; r) = k log r - r - log k!``, r clipped at ``RATE_FLOOR``.

    Args:
        k: non-negative counts per bin; rate: expected counts per bin, same shape.
    """
    k = np.asarray(k, dtype=float)
    r = np.maximum(np.asarray(rate, dtype=float), RATE_FLOOR)
    return k * np.log(r) - r - gammaln(k + 1.0)


def bits_per_spike(counts, rate, null_rate, valid=None) -> float:
    """Bits per spike of a rate prediction against a per-unit constant null.

    ``bps = (sum log P(k | rate) - sum log P(k | null_rate)) / (n_spikes * ln 2)``, Poisson,
    summed over all valid entries. With ``counts``/``rate`` restricted to held-out units on
    test trials and ``null_rate`` = each unit's mean count per bin on the *training* trials,
    this is co-bps as the Neural Latents Benchmark defines it, but for the null: NLB's own
    code takes each unit's mean over the evaluated data, which a prediction of those data
    could not know; :func:`null_shift` converts between the two.

    Args:
        counts: (trial, time, unit) spike counts; rate: same shape, expected counts per bin.
        null_rate: (unit,) expected counts per bin; valid: optional bool, broadcastable.

    Returns:
        float bits per spike (NaN if there are no spikes).
    """
    counts = np.asarray(counts, dtype=float)
    rate = np.asarray(rate, dtype=float)
    null = np.broadcast_to(np.asarray(null_rate, dtype=float), counts.shape)
    ok = _valid(counts, rate, valid=valid)
    n_spikes = counts[ok].sum()
    if n_spikes <= 0:
        return float("nan")
    ll = poisson_loglik(counts[ok], rate[ok]).sum()
    ll0 = poisson_loglik(counts[ok], null[ok]).sum()
    return float((ll - ll0) / (n_spikes * np.log(2)))


def null_shift(counts, null_rate, valid=None) -> float:
    """Delta: how much any :func:`bits_per_spike` against ``null_rate`` drops when the null
    is instead each unit's own mean count over the scored entries (NLB's null).

    ``Delta = (sum log P(k | kbar_u) - sum log P(k | null_u)) / (n_spikes * ln 2) >= 0``,
    ``kbar_u`` = unit u's mean of ``counts`` over its valid entries (the best constant rate
    for them, hence Delta >= 0). For any ``rate`` finite on the valid entries,
    ``bits_per_spike(counts, rate, kbar) = bits_per_spike(counts, rate, null_rate) - Delta``:
    the shift depends on the data only, so it moves every model scored on the same entries
    alike.

    Args:
        counts: (..., unit) spike counts; null_rate: (unit,) expected counts per bin;
        valid: optional bool, broadcastable to ``counts``.

    Returns:
        float bits per spike (NaN if there are no spikes).
    """
    counts = np.asarray(counts, dtype=float)
    ok = _valid(counts, valid=valid)
    per_unit = np.where(ok, counts, 0.0).reshape(-1, counts.shape[-1])
    n_valid = ok.reshape(-1, counts.shape[-1]).sum(0)
    own = per_unit.sum(0) / np.maximum(n_valid, 1)  # (unit,) kbar_u
    return bits_per_spike(counts, np.broadcast_to(own, counts.shape), null_rate, ok)


def r2_per_unit(x, pred, valid=None) -> tuple[np.ndarray, float]:
    """Reconstruction R^2 per unit and pooled.

    Per unit u: ``1 - sum (x - pred)^2 / sum (x - mean x)^2`` over valid (trial, time) bins;
    pooled (variance-weighted): the same with both sums also taken over units.

    Args:
        x, pred: (trial, time, unit) float. valid: optional bool broadcastable.

    Returns:
        (unit,) float R^2 (NaN for a unit without variance), pooled float.
    """
    x = np.asarray(x, dtype=float)
    pred = np.asarray(pred, dtype=float)
    ok = _valid(x, pred, valid=valid)
    xs = x.reshape(-1, x.shape[-1])
    ps = pred.reshape(-1, x.shape[-1])
    oks = ok.reshape(-1, x.shape[-1])
    n = oks.sum(0)
    mean = np.where(oks, xs, 0).sum(0) / np.maximum(n, 1)
    sse = np.where(oks, (xs - ps) ** 2, 0).sum(0)
    sst = np.where(oks, (xs - mean) ** 2, 0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(sst > 0, 1 - sse / sst, np.nan)
    pooled = 1 - sse.sum() / sst.sum() if sst.sum() > 0 else float("nan")
    return per, float(pooled)


# ---------------------------------------------------------------- behavior decoding
def ridge_decoding_r2(z, y, trial, n_splits=5, alphas=None) -> float:
    """Cross-validated ridge decoding R^2 from latents to a behavior variable.

    Standardised latents -> ``RidgeCV`` (alpha chosen by efficient leave-one-out within the
    training folds); ``GroupKFold`` over trials so no trial is in both the fit and the score.
    The score is the variance-weighted R^2 of the out-of-fold predictions pooled over all
    samples and behavior dimensions.

    Args:
        z: (sample, latent) float; y: (sample, dim) or (sample,) float; trial: (sample,)
        trial id of each sample. Rows with a non-finite value are dropped.
        n_splits: folds (reduced to the number of trials if fewer).
        alphas: ridge penalties to choose from (default ``logspace(-3, 3, 13)``).

    Returns:
        float R^2 (NaN if fewer than 2 trials).
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    z = np.asarray(z, dtype=float)
    y = np.asarray(y, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    trial = np.asarray(trial).reshape(-1)
    if not (z.shape[0] == y.shape[0] == trial.shape[0]):
        raise ValueError(
            f"sample counts differ: z {z.shape[0]}, y {y.shape[0]}, trial {trial.shape[0]}"
        )
    ok = np.isfinite(z).all(1) & np.isfinite(y).all(1)
    z, y, trial = z[ok], y[ok], trial[ok]
    n_tr = np.unique(trial).size
    if n_tr < 2:
        return float("nan")
    alphas = np.logspace(-3, 3, 13) if alphas is None else alphas
    pred = np.empty_like(y)
    for tr, te in GroupKFold(n_splits=min(n_splits, n_tr)).split(z, y, trial):
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
        model.fit(z[tr], y[tr])
        pred[te] = model.predict(z[te]).reshape(len(te), -1)
    sst = np.sum((y - y.mean(0)) ** 2)
    return float(1 - np.sum((y - pred) ** 2) / sst) if sst > 0 else float("nan")


#: NLB's velocity-decoding ridge penalties (its ``fit_and_eval_decoder``)
NLB_RIDGE_ALPHAS = np.logspace(-4, 0, 9)


def nlb_decoding_r2(train_rates, train_y, test_rates, test_y) -> float:
    """NLB's decoding R^2: ridge from predicted rates to behavior, fit on the train
    trials, scored on the test trials.

    The protocol of the Neural Latents Benchmark's velocity decoding: ``Ridge`` with alpha
    chosen from ``NLB_RIDGE_ALPHAS`` by 5-fold ``GridSearchCV`` (sklearn's default,
    unshuffled folds) on the train bins, no standardisation; the score is sklearn's
    ``r2_score`` on the test bins (R^2 of each behavior dimension, averaged uniformly).
    Unlike :func:`ridge_decoding_r2` the inputs are rates (all units, held-in and
    held-out) and train and test are different trials.

    Args:
        train_rates: (sample, unit); train_y: (sample, dim) or (sample,);
        test_rates, test_y: the same for the test bins. Rows with a non-finite value
        are dropped.
    Returns:
        float R^2 (NaN with fewer than 10 usable train or 2 test samples).
    """
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    def clean(x, y):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        y = y[:, None] if y.ndim == 1 else y
        ok = np.isfinite(x).all(1) & np.isfinite(y).all(1)
        return x[ok], y[ok]

    (xtr, ytr), (xte, yte) = clean(train_rates, train_y), clean(test_rates, test_y)
    if len(xtr) < 10 or len(xte) < 2:
        return float("nan")
    search = GridSearchCV(Ridge(), {"alpha": NLB_RIDGE_ALPHAS}, cv=5)
    search.fit(xtr, ytr)
    return float(search.score(xte, yte))


# ------------------------------------------------------- generated vs held-out data
# ``x`` is the reference (observed, held-out) data and ``gen`` the generated data; they may
# hold different trials (e.g. training trials as a reference ceiling), so each has its own
# ``valid`` mask (``valid_gen`` defaults to ``valid`` when the shapes agree) and condition.


def _ok(a: np.ndarray, valid) -> np.ndarray:
    ok = np.isfinite(a)
    if valid is not None:
        ok &= np.broadcast_to(np.asarray(valid, dtype=bool), a.shape)
    return ok


def _gen_masks(x, gen, valid, valid_gen):
    x = np.asarray(x, dtype=float)
    gen = np.asarray(gen, dtype=float)
    if x.shape[1:] != gen.shape[1:]:
        raise ValueError(f"x {x.shape} and gen {gen.shape} differ in (time, unit)")
    if valid_gen is None and gen.shape == x.shape:
        valid_gen = valid
    ok_x = _ok(x, None if valid is None else np.asarray(valid, dtype=bool))
    ok_g = _ok(gen, None if valid_gen is None else np.asarray(valid_gen, dtype=bool))
    return x, gen, ok_x, ok_g


def _masked_mean(a, ok, axis):
    n = ok.sum(axis)
    return np.where(ok, a, 0).sum(axis) / np.maximum(n, 1), n


def mean_rate_stats(x, gen, valid=None, valid_gen=None) -> dict[str, float]:
    """Compare per-unit mean activity of generated and observed data.

    Args:
        x: (trial, time, unit) observed; gen: (trial', time, unit) generated;
        valid / valid_gen: optional bool masks broadcastable to each.

    Returns:
        ``rate_pearson`` (corr over units of the two mean vectors), ``rate_rmse`` (same
        units as x, per bin), ``rate_rel_err`` = mean_u |gen_u - x_u| / mean_u |x_u|.
    """
    x, gen, ok_x, ok_g = _gen_masks(x, gen, valid, valid_gen)
    mx, _ = _masked_mean(x, ok_x, (0, 1))
    mg, _ = _masked_mean(gen, ok_g, (0, 1))
    denom = np.mean(np.abs(mx))
    return {
        "rate_pearson": _pearson(mx, mg),
        "rate_rmse": float(np.sqrt(np.mean((mx - mg) ** 2))),
        "rate_rel_err": float(np.mean(np.abs(mg - mx)) / denom) if denom > 0 else float("nan"),
    }


def psth_r2(x, gen, condition=None, condition_gen=None, valid=None, valid_gen=None) -> float:
    """R^2 of the generated condition-averaged PSTHs against the observed ones.

    PSTH = mean over the trials of one condition, per (time, unit); R^2 is variance-weighted
    over (condition, time, unit) with the observed PSTHs as the target; only conditions and
    (time, unit) cells present in both are scored.

    Args:
        x: (trial, time, unit) observed; gen: (trial', time, unit) generated;
        condition / condition_gen: (trial,) / (trial',) labels (None: one condition;
        ``condition_gen`` defaults to ``condition`` when the trial counts agree).
    """
    x, gen, ok_x, ok_g = _gen_masks(x, gen, valid, valid_gen)
    cx = np.zeros(x.shape[0]) if condition is None else np.asarray(condition)
    if condition_gen is None:
        cg = cx if gen.shape[0] == x.shape[0] else np.zeros(gen.shape[0])
    else:
        cg = np.asarray(condition_gen)
    px, pg = [], []
    for c in np.intersect1d(np.unique(cx), np.unique(cg)):
        mx, nx = _masked_mean(x[cx == c], ok_x[cx == c], 0)
        mg, ng = _masked_mean(gen[cg == c], ok_g[cg == c], 0)
        keep = (nx > 0) & (ng > 0)
        px.append(mx[keep])
        pg.append(mg[keep])
    if not px:
        return float("nan")
    px, pg = np.concatenate(px), np.concatenate(pg)
    sst = np.sum((px - px.mean()) ** 2)
    return float(1 - np.sum((px - pg) ** 2) / sst) if sst > 0 else float("nan")


def unit_correlations(x, valid=None) -> np.ndarray:
    """(unit, unit) Pearson correlations over all valid (trial, time) bins (NaN: no variance)."""
    x = np.asarray(x, dtype=float)
    ok = _ok(x, None if valid is None else np.asarray(valid, dtype=bool)).all(-1).reshape(-1)
    a = x.reshape(-1, x.shape[-1])[ok]
    if a.shape[0] < 3:
        return np.full((x.shape[-1], x.shape[-1]), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.atleast_2d(np.corrcoef(a, rowvar=False))


def corr_similarity(x, gen, valid=None, valid_gen=None) -> dict[str, float]:
    """Similarity of the unit-by-unit correlation matrices of observed and generated data.

    Correlations over all valid (trial, time) bins of each (:func:`unit_correlations`);
    pairs involving a unit without variance are skipped.

    Returns:
        ``corr_pearson`` (correlation of the upper triangles), ``corr_rmse``.
    """
    x, gen, ok_x, ok_g = _gen_masks(x, gen, valid, valid_gen)
    nan = {"corr_pearson": float("nan"), "corr_rmse": float("nan")}
    if x.shape[-1] < 2:
        return nan
    ca, cb = unit_correlations(x, ok_x), unit_correlations(gen, ok_g)
    iu = np.triu_indices(x.shape[-1], 1)
    ua, ub = ca[iu], cb[iu]
    keep = np.isfinite(ua) & np.isfinite(ub)
    if keep.sum() < 2:
        return nan
    return {
        "corr_pearson": _pearson(ua[keep], ub[keep]),
        "corr_rmse": float(np.sqrt(np.mean((ua[keep] - ub[keep]) ** 2))),
    }


def _pearson(a, b) -> float:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    sa, sb = a.std(), b.std()
    if sa == 0 or sb == 0 or a.size < 2:
        return float("nan")
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))
