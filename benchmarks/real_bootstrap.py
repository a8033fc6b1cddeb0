"""Co-bps with its sampling error: a paired bootstrap over test trials, fits against smoothing.

    python benchmarks/real.py --sessions mtl --methods lrRNN,DisRNN --seeds 2 --workdir W
    python benchmarks/real_bootstrap.py --workdir W --sessions mtl

Reads the datasets and fit folders a ``benchmarks/real.py --workdir W`` run left
(``W/<session>.nc``, ``W/<session>/seed<s>/<method>``), fits NLB's smoothing reference and
each fit's smoothing posterior again (seeded as ``real.py`` does), and scores them all on
the causal fit's bins (test trials, held-out units, training-trial null rates, as
``disrnn.evaluation.cosmoothing.cosmoothing_metrics``). Co-bps is a ratio of sums over
bins, so its sampling error is that of the test trials: B bootstrap resamples of the
test trials (the same resample for every model, so differences are paired) give each
co-bps a standard error, and each fit's difference from smoothing of the same kind (a
causal prediction against the causal smoothing, of past bins only; a smoothing posterior
against NLB's acausal smoothing), and from the lrRNN of the same seed (causal against
causal, posterior against posterior), a 95 % interval.
Prints one table per session. Seeded; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _per_trial(x, rate, null, ok):
    """(trial,) summed log-likelihood gain over the null (nats) and (trial,) spikes."""
    from disrnn.evaluation.metrics import poisson_loglik

    m = ok[..., None] & np.isfinite(rate) & np.isfinite(x)
    gain = np.where(m, poisson_loglik(x, np.where(m, rate, 1.0))
                    - poisson_loglik(x, np.broadcast_to(null, x.shape)), 0.0)  # fmt: skip
    return gain.sum((1, 2)), np.where(m, x, 0.0).sum((1, 2))


def _session(workdir: Path, session: str, n_boot: int) -> str:
    import xarray as xr

    from disrnn.evaluation.cosmoothing import fit_smoothing_posterior
    from disrnn.evaluation.inputs import null_rate
    from disrnn.evaluation.references import smoothing_reference
    from disrnn.fit import load_fit
    from disrnn.fit.tensors import valid_bins

    ds_path = workdir / f"{session}.nc"
    ds = xr.load_dataset(ds_path)
    split = np.asarray(ds["split"].values).astype(str)
    heldout = np.asarray(ds["heldout"].values).astype(bool)
    dt = ds.isel(trial=np.flatnonzero(split == "test"))
    x = dt["activity"].transpose("trial", "time", "unit").values.astype(float)[..., heldout]
    fits = sorted((workdir / session).glob("seed*/*/weights.pt"))
    if not fits:
        raise SystemExit(f"no fit folders under {workdir / session}: run benchmarks/real.py "
                         f"--sessions {session} --workdir {workdir} first")  # fmt: skip
    L = max(int(load_fit(f.parent).history) for f in fits)
    ok = valid_bins(dt, L)  # the causal fits' scored bins (the longest history among them)
    null = null_rate(ds.isel(trial=np.flatnonzero(split == "train")), L)[heldout]
    cond = "condition" if "condition" in ds.coords else None  # as real.py bins it
    ref = smoothing_reference(ds_path, seed=0, condition=cond, history=L)
    smooth = ref.rates.sel(trial=dt["trial"]).transpose("trial", "time", "unit").values
    models = {"smoothing": _per_trial(x, smooth, null, ok)}
    if ref.rates_causal is not None:  # past bins only: the reference of the causal fits
        causal = ref.rates_causal.sel(trial=dt["trial"]).transpose("trial", "time", "unit")
        models["smoothing causal"] = _per_trial(x, causal.values, null, ok)
    for f in fits:
        fit = load_fit(f.parent)
        name = f"{f.parent.name} seed {f.parent.parent.name[4:]}"
        causal = fit.predict(dt).transpose("trial", "time", "unit").values[..., heldout]
        models[f"{name} causal"] = _per_trial(x, causal, null, ok)
        post = fit_smoothing_posterior(fit, ds, seed=0)
        sm = post.predict(dt).transpose("trial", "time", "unit").values[..., heldout]
        models[f"{name} smoothing posterior"] = _per_trial(x, sm, null, ok)
    rng = np.random.default_rng(0)
    n = x.shape[0]
    boot = rng.integers(0, n, size=(n_boot, n))  # (resample, trial), shared by all models

    def bps(gain, spikes):
        """Co-bps of (..., trial) per-trial gains and spikes."""
        return gain.sum(-1) / (spikes.sum(-1) * np.log(2))

    rows = [f"### {session}: {n} test trials, {int(heldout.sum())} held-out units, "
            f"{int(ok.sum())} scored bins, {n_boot} bootstrap resamples of the test trials",
            "", "| model | co-bps | bootstrap se | minus smoothing of the same kind "
            "(95 % interval) | minus lrRNN of the same seed and kind (95 % interval) |",
            "|---|---|---|---|---|"]  # fmt: skip

    point = {name: bps(g, sp) for name, (g, sp) in models.items()}
    resampled = {name: bps(g[boot], sp[boot]) for name, (g, sp) in models.items()}  # (resample,)

    def versus(name, other):
        if other not in models or name == other:
            return ""
        d = resampled[name] - resampled[other]
        return (f"{point[name] - point[other]:+.4f} "
                f"({np.percentile(d, 2.5):+.4f} .. {np.percentile(d, 97.5):+.4f})")  # fmt: skip

    def kind_ref(name):
        """A causal prediction against the causal smoothing, the rest against NLB's."""
        causal = name.endswith(" causal") and "smoothing causal" in models
        return "smoothing causal" if causal else "smoothing"

    for name in models:
        lr = "lrRNN " + name.split(" ", 1)[1] if " " in name else ""  # same seed and kind
        rows.append(f"| {name} | {point[name]:.4f} | {resampled[name].std(ddof=1):.4f} | "
                    f"{versus(name, kind_ref(name))} | {versus(name, lr)} |")  # fmt: skip
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="a benchmarks/real.py --workdir folder")
    p.add_argument("--sessions", default="mtl", help="comma-separated: alm, mtl")
    p.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    for s in args.sessions.split(","):
        print(_session(Path(args.workdir), s, args.boot), "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
