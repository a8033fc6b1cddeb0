"""Where the smoothing posterior starts, on real sessions of two shapes.

    python benchmarks/posterior_init.py                       # alm, alm-small; seeds 0-1
    python benchmarks/posterior_init.py --sessions alm-small --seeds 3 --workdir W
    python benchmarks/posterior_init.py --sessions alm --seeds 1 --methods lrRNN --inits svd \
        --bin-width 0.005 --posterior context_bin=0.005     # the GRU at every 5 ms bin

Bins each session as ``benchmarks/real.py`` does (``alm``: 254 trials x 6 s; ``alm-small``:
100 trials x 0.7 s, the shape of a small NLB session), fits lrRNN and DisRNN (4 + 4) per
seed with the package defaults (kept in ``--workdir`` and reused), then fits each fit's
smoothing posterior (:func:`disrnn.evaluation.cosmoothing.fit_smoothing_posterior`) from
each start below and prints its co-bps on the test trials, with NLB's smoothing baseline
of the same bins for reference. Starts (``initial_kernel``: a share w of a symmetric
exponential of time constant tau_s, the rest one of a third of the span; ``basis``: the
coordinates the encoder learns in):

    wide        w = 0, the fit's latent coordinates
    mixture     the package's w and tau_s (0.8, 30 ms), the fit's latent coordinates
    svd         the same in the coordinates of the SVD of W (the package default)
    svd-wide    w = 0 in the coordinates of the SVD of W
    svd-fixed   the default start with the fit's held-out rows of A, a kept (readout fixed)
    p0, p0.1, p0.3  the default start with one coordinated-dropout fraction each, instead of
                the package's choice among them by the val loss
    k0, k0.1, k0.3  the same with the kernel alone (no context GRU: ``context`` 0) at the
                learning rate it had, 1e-2

``--posterior KEY=VALUE`` sets a ``SmoothingConfig`` field on top of every start (e.g.
``context=128 lr=0.01``), ``--methods`` narrows the fits (default lrRNN, DisRNN). One torch
thread; every number is seeded. This is a benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from real import bin_dataset, parse_options, reference_rows  # benchmarks/real.py

from disrnn.evaluation.smoothing_config import INIT_SHORT_WEIGHT, INIT_TAU_SECONDS

FRACTIONS = (0.0, 0.1, 0.3)  # the dropout fractions of the p* and k* starts
_MIXTURE = {"short_weight": INIT_SHORT_WEIGHT, "tau_short": INIT_TAU_SECONDS}
INITS = {
    "wide": {"short_weight": 0.0, "basis": "fit"},
    "mixture": {**_MIXTURE, "basis": "fit"},
    "svd": {**_MIXTURE, "basis": "svd"},
    "svd-wide": {"short_weight": 0.0, "basis": "svd"},
    "svd-fixed": {**_MIXTURE, "basis": "svd", "readout": "fixed"},
    **{f"p{p:g}": {**_MIXTURE, "basis": "svd", "dropout": p} for p in FRACTIONS},
    **{
        f"k{p:g}": {**_MIXTURE, "basis": "svd", "dropout": p, "context": 0, "lr": 1e-2}
        for p in FRACTIONS
    },
}
METHODS = ("lrRNN", "DisRNN")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", default="alm,alm-small")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--inits", default=",".join(INITS))
    p.add_argument("--workdir", default=None)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--bin-width", type=float, default=None, help="seconds (default 0.02)")
    p.add_argument("--posterior", nargs="*", default=[], metavar="KEY=VALUE",
                   help="SmoothingConfig fields set on top of every start, e.g. context=128")  # fmt: skip
    args = p.parse_args(argv)
    extra = parse_options(args.posterior)

    import torch
    import xarray as xr

    torch.set_num_threads(1)
    from disrnn.evaluation.cosmoothing import cosmoothing_metrics, fit_smoothing_posterior
    from disrnn.fit import fit, load_fit
    from disrnn.fit.config import FitConfig
    from disrnn.fit.defaults import default_history
    from disrnn.fit.tensors import bin_width

    work = Path(args.workdir or tempfile.mkdtemp(prefix="disrnn-posterior-"))
    inits = args.inits.split(",")
    for name in args.sessions.split(","):
        root = work / (name if args.bin_width is None else f"{name}-{args.bin_width * 1e3:g}ms")
        root.mkdir(parents=True, exist_ok=True)
        ds_path = root / "ds.nc"
        if not ds_path.exists():
            bin_dataset(name, False, ds_path, args.bin_width)
        ds = xr.load_dataset(ds_path)
        L = default_history("spike_counts", bin_width(ds))
        smooth = reference_rows(ds_path, False, 8, L)[0]["co_bps"]
        scores = {i: [] for i in inits}
        for seed in range(args.seeds):
            for method in args.methods.split(","):
                out = root / f"seed{seed}" / method
                if not (out / "fit_info.json").exists():  # the fit only: no evaluation
                    config = FitConfig.from_options(method, {"groups": (4, 4)})
                    fit(ds_path, config, out, seed=seed, device="cpu", progress=False)
                f = load_fit(out)
                for init in inits:
                    post = fit_smoothing_posterior(f, ds, seed=0, **{**INITS[init], **extra})
                    co = cosmoothing_metrics(f, post, ds)["co_bps_smoothed"]
                    scores[init].append(co)
                    print(json.dumps({"session": name, "method": method, "seed": seed,
                                      "init": init, "co_bps_smoothed": round(co, 4),
                                      "best_epoch": post.info["best_epoch"]}), flush=True)  # fmt: skip
        sizes = ds.sizes
        print(f"\n{name}: {sizes['trial']} trials x {sizes['time']} bins, smoothing {smooth:.3f}")
        print("| init | co-bps (smoothing posterior), mean +- sd | fits |\n|---|---|---|")
        for init in inits:
            v = np.array(scores[init])
            print(f"| {init} | {v.mean():.3f} +- {v.std():.3f} | {v.size} |")
        print(flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
