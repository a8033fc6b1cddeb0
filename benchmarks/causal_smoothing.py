"""The causal smoothing reference by kernel span and by rank, on a shared real session.

    python benchmarks/causal_smoothing.py                       # ALM, as real.py bins it
    python benchmarks/causal_smoothing.py --session mtl --sds 0.05,0.2 --ranks 4,8

What a fit's causal co-bps is up against. The causal smoothing (NLB's smoothing GLMs on
held-in spikes smoothed over strictly earlier bins, ``smoothing_reference`` step 4) is
scored at each kernel sd alone (no cross-validation), and at each rank: the GLMs on the
first r principal components of the training bins' standardised smoothed held-in spikes
(every held-in unit is the full rank), so that it can be set beside a low-rank RNN with
r latents and a history of the same span (a half Gaussian reaches back 4 sd). GLM alpha
fixed at ``--alpha``; scored on the bins of a fit with history L (``--history``, the
spike-count default's 10 bins of 20 ms). Binning as ``benchmarks/real.py``. Seeded and
deterministic; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from real import SESSIONS, bin_dataset  # benchmarks/real.py, beside this script


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--session", default="alm", choices=sorted(SESSIONS))
    p.add_argument("--sds", default="0.02,0.05,0.1,0.2", help="kernel sds (s), comma-separated")
    p.add_argument("--ranks", default="4,8,16", help="ranks, comma-separated (plus full)")
    p.add_argument("--rank-sds", default="0.05,0.2", help="kernel sds of the rank sweep")
    p.add_argument("--alpha", type=float, default=0.01, help="GLM L2 penalty")
    p.add_argument("--history", type=int, default=10, help="unscored bins L, as a fit's")
    p.add_argument("--workdir", default=None)
    args = p.parse_args(argv)

    import xarray as xr

    from disrnn.evaluation import metrics as mt
    from disrnn.evaluation.glm import fit_predict, one_thread
    from disrnn.evaluation.inputs import null_rate
    from disrnn.evaluation.references import smoothing_reference
    from disrnn.evaluation.spike_smoothing import smooth_spikes
    from disrnn.fit.tensors import valid_bins

    work = Path(args.workdir or tempfile.mkdtemp(prefix="disrnn-causal-"))
    work.mkdir(parents=True, exist_ok=True)
    ds_path = work / f"{args.session}.nc"
    if not ds_path.exists():
        bin_dataset(args.session, False, ds_path)
    ds = xr.load_dataset(ds_path)
    bw = float(ds.attrs["bin_width"])
    L = args.history

    for sd in (float(s) for s in args.sds.split(",")):
        m = smoothing_reference(ds_path, kernel_sds=[sd], alphas=[args.alpha],
                                causal_kernel_sds=[sd], history=L).metrics  # fmt: skip
        print(json.dumps({"kernel_sd": sd, "co_bps_causal": m["co_bps_causal"],
                          "co_bps_acausal": m["co_bps"]}), flush=True)  # fmt: skip

    x = ds["activity"].transpose("trial", "time", "unit").values.astype(float)
    ho = np.asarray(ds["heldout"].values, bool)
    split = np.asarray(ds["split"].values).astype(str)
    tr, te = split == "train", split == "test"
    obs, ok = valid_bins(ds, 0), valid_bins(ds, L)
    pre = ds["pre_activity"].transpose("trial", ..., "unit").values[..., ~ho].astype(float)
    pre_obs = ds["pre_mask"].transpose("trial", ...).values if "pre_mask" in ds else None
    null = null_rate(ds.isel(trial=np.flatnonzero(tr)), L)[ho]
    ranks = [int(r) for r in args.ranks.split(",")] + [int((~ho).sum())]
    for sd in (float(s) for s in args.rank_sds.split(",")):
        s = smooth_spikes(x[..., ~ho], obs, sd / bw, pre, pre_obs, causal=True)
        s = np.nan_to_num(s, nan=0.0)  # no earlier bin observed: 0, as the reference
        f_tr = s[tr][obs[tr]]
        mu, scale = f_tr.mean(0), f_tr.std(0)
        scale = np.where(scale > 0, scale, 1.0)
        _, _, vt = np.linalg.svd((f_tr - mu) / scale, full_matrices=False)
        for r in ranks:
            f = ((s - mu) / scale) @ vt[:r].T  # (trial, time, r) principal components
            rates = np.full(x[te][..., ho].shape, np.nan)
            with one_thread():
                rates[obs[te]] = fit_predict(f[tr][obs[tr]], x[tr][obs[tr]][:, ho],
                                             f[te][obs[te]], args.alpha, 500)  # fmt: skip
            co = mt.bits_per_spike(x[te][..., ho], rates, null, ok[te][..., None])
            print(json.dumps({"kernel_sd": sd, "rank": r, "co_bps_causal": co}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
