"""How co-bps moves with NLB's null: the test trials' own mean rate instead of the training's.

    python benchmarks/null_shift.py --sessions alm-small,alm,mtl
    python benchmarks/null_shift.py --sessions alm-small --cobps smoothing=0.228,DisRNN=0.291

co-bps = (LL(model) - LL(null)) / (n_spikes ln 2) over the held-out units' scored test
bins. This project's null is each held-out unit's mean count per bin over the training
trials' scored bins (:func:`disrnn.evaluation.inputs.null_rate`); NLB's own code takes
the mean over the evaluated data itself. The shift

    Delta = (LL(y | test mean) - LL(y | train mean)) / (n_spikes ln 2)  >= 0

depends on the data only (the test mean is the best constant for those bins), so every
method's co-bps with NLB's null is its co-bps here minus Delta: rankings keep, ratios to
the smoothing baseline change. Sessions are binned as ``benchmarks/real.py`` bins them;
the scored bins are those of a spike-count fit with the default history (as the
smoothing reference is scored). ``--cobps NAME=VALUE,...`` converts given co-bps values
and prints their ratios to ``smoothing``. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
from real import bin_dataset  # benchmarks/real.py, beside this script


def null_shift(ds) -> dict:
    """Delta (bits per spike) of one binned session, with the counts it rests on."""
    from disrnn.data.io import DIMS
    from disrnn.evaluation.inputs import null_rate
    from disrnn.evaluation.metrics import poisson_loglik
    from disrnn.fit.defaults import default_history
    from disrnn.fit.tensors import bin_width, valid_bins

    L = default_history("spike_counts", bin_width(ds))
    split = np.asarray(ds["split"].values).astype(str)
    ho = np.asarray(ds["heldout"].values, bool)
    dtr, dt = (ds.isel(trial=np.flatnonzero(split == s)) for s in ("train", "test"))
    ok = valid_bins(dt, L)
    y = dt["activity"].transpose(*DIMS).values.astype(float)[ok][:, ho]  # (bin, held-out)
    train_mean = null_rate(dtr, L)[ho]
    test_mean = y.mean(0)
    n_spikes = y.sum()
    gain = poisson_loglik(y, np.broadcast_to(test_mean, y.shape)).sum()
    gain -= poisson_loglik(y, np.broadcast_to(train_mean, y.shape)).sum()
    return {
        "history": L,
        "test_trials": int(dt.sizes["trial"]),
        "heldout_units": int(ho.sum()),
        "spikes": int(n_spikes),
        "delta": float(gain / (n_spikes * math.log(2))),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", default="alm-small,alm,mtl")
    p.add_argument("--cobps", default="", help="NAME=VALUE,... co-bps to convert")
    args = p.parse_args(argv)
    given = dict(kv.split("=") for kv in args.cobps.split(",") if kv)
    from disrnn.data.io import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sessions.split(","):
            ds = load_dataset(bin_dataset(name, False, Path(tmp) / f"{name}.nc"))
            r = null_shift(ds)
            print(
                f"{name}: {r['test_trials']} test trials, {r['heldout_units']} held-out units, "
                f"{r['spikes']} spikes, L = {r['history']}: Delta = {r['delta']:.4f} bits/spike"
            )
            conv = {k: float(v) - r["delta"] for k, v in given.items()}
            for k, v in conv.items():
                ratio = f", {v / conv['smoothing']:.2f} x smoothing" if "smoothing" in conv else ""
                print(f"  {k}: {float(given[k]):.3f} -> {v:.3f} with NLB's null{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
