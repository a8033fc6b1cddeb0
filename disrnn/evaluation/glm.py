"""The Poisson GLMs of the smoothing reference: features -> held-out units' counts.

:func:`fit_predict` fits one ``sklearn`` ``PoissonRegressor`` per output unit on
standardised features; :func:`select_grid` chooses (kernel sd, alpha) by the summed
held-out Poisson log-likelihood over seeded folds of the training trials.
"""

from __future__ import annotations

import numpy as np

from disrnn.evaluation import metrics as mt

__all__ = ["fit_predict", "one_thread", "search_grid", "select_grid"]


def one_thread():
    """sklearn's OpenMP loss kernels on one thread: on a small or busy machine the many small
    GLM fits are ~30x faster than with oversubscribed threads (and bitwise reproducible)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _glm(alpha: float, max_iter: int, warm_start: bool = False):
    from sklearn.linear_model import PoissonRegressor

    return PoissonRegressor(alpha=alpha, max_iter=max_iter, warm_start=warm_start)


def _standardise(f_train: np.ndarray):
    mu = f_train.mean(0)
    sd = f_train.std(0)
    return mu, np.where(sd > 0, sd, 1.0)


def fit_predict(f_tr, y_tr, f_te, alpha, max_iter) -> np.ndarray:
    """(bin_te, unit_out) rates of one fresh Poisson GLM per output unit."""
    mu, sd = _standardise(f_tr)
    a, b = (f_tr - mu) / sd, (f_te - mu) / sd
    out = np.empty((f_te.shape[0], y_tr.shape[1]))
    for u in range(y_tr.shape[1]):
        out[:, u] = _glm(alpha, max_iter).fit(a, y_tr[:, u]).predict(b)
    return out


def _cv_scores(feat, y, ok, folds, alphas, max_iter) -> np.ndarray:
    """(alpha,) summed Poisson LL of the held-out units on each fold's left-out trials.

    feat: (trial, time, feature), y: (trial, time, unit_out), ok: (trial, time) bool over
    the training trials; folds: (trial,) fold index. Alphas are fitted largest first with
    warm starts (same optimum, fewer iterations).
    """
    order = np.argsort(alphas)[::-1]
    ll = np.zeros(len(alphas))
    for k in np.unique(folds):
        tr, te = (folds != k)[:, None] & ok, (folds == k)[:, None] & ok
        mu, sd = _standardise(feat[tr])
        a, b = (feat[tr] - mu) / sd, (feat[te] - mu) / sd
        for u in range(y.shape[2]):
            model = _glm(alphas[order[0]], max_iter, warm_start=True)
            for i in order:
                model.set_params(alpha=alphas[i])
                model.fit(a, y[..., u][tr])
                ll[i] += mt.poisson_loglik(y[..., u][te], model.predict(b)).sum()
    return ll


def select_grid(feats, tri, y, obs, sds, alphas, n_folds, seed, max_iter):
    """(kernel sd, alpha, cv scores): the grid point with the best summed held-out Poisson
    LL over ``n_folds`` seeded folds of the training trials (first maximum in (sd, alpha)
    order); a one-point grid is returned without cross-validation.

    feats: sd (s) -> (trial, time, feature) of every trial; tri: (train trial,) indices;
    y: (train trial, time, unit_out) counts; obs: (train trial, time) bool.
    """
    if len(sds) * len(alphas) == 1:
        return sds[0], alphas[0], {}
    n = y.shape[0]
    if n < n_folds or n_folds < 2:
        raise ValueError(f"n_folds must be in 2..{n} (the training trials), got {n_folds}")
    folds = np.random.default_rng(seed).permutation(n) % n_folds
    cv: dict[str, float] = {}
    for sd in sds:
        ll = _cv_scores(feats(sd)[tri], y, obs, folds, alphas, max_iter)
        cv.update({f"sd={sd:g},alpha={a:g}": float(v) for a, v in zip(alphas, ll, strict=True)})
    best = max(cv, key=cv.get)
    sd_best, alpha_best = (float(p.split("=")[1]) for p in best.split(","))
    return sd_best, alpha_best, cv


def search_grid(kernel_sds, alphas, bin_width) -> tuple[list[float], list[float]]:
    """(sorted unique kernel sds in s, each >= ``bin_width``; alphas as floats).

    Raises:
        ValueError: an empty grid or a negative alpha.
    """
    sds = sorted({max(float(s), bin_width) for s in np.atleast_1d(kernel_sds)})
    alphas = [float(a) for a in np.atleast_1d(alphas)]
    if not sds or not alphas or min(alphas) < 0:
        raise ValueError(
            f"kernel_sds and alphas must be non-empty with alphas >= 0, got "
            f"{kernel_sds!r} and {alphas!r}"
        )
    return sds, alphas
