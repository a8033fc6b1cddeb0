"""One method on the shared ALM session with given fit and smoothing-posterior options.

    python benchmarks/alm_options.py DisRNN 0                         # package defaults
    python benchmarks/alm_options.py DisRNN 0 --fit finetune_lr_scale=1
    python benchmarks/alm_options.py lrRNN 0 --lags 10,20,30,50       # posterior span sweep

Bins the ALM session as ``benchmarks/real.py`` does (20 ms, 25 % of units held out,
60/20/20, seed 0), fits ``METHOD`` with ``SEED`` and the ``--fit`` FitConfig options
(values parsed as Python literals), evaluates it (causal and smoothing-posterior
co-bps at the package defaults), and with ``--lags`` refits the smoothing posterior at
each kernel span (bins each side) and prints its co-bps. Prints one JSON line per
result, with fit seconds and fit CPU seconds (one torch thread). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from real import bin_dataset, parse_options  # benchmarks/real.py, beside this script


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("method")
    p.add_argument("seed", type=int)
    p.add_argument("--fit", nargs="*", default=[], metavar="KEY=VALUE", help="FitConfig options")
    p.add_argument("--lags", default="", help="comma-separated posterior spans (bins) to refit")
    p.add_argument("--groups", default="4,4")
    p.add_argument("--workdir", default=None)
    args = p.parse_args(argv)

    import torch
    import xarray as xr

    torch.set_num_threads(1)
    from disrnn.evaluation import evaluate
    from disrnn.evaluation.cosmoothing import cosmoothing_metrics, fit_smoothing_posterior
    from disrnn.fit import fit, load_fit
    from disrnn.fit.config import FitConfig

    work = Path(args.workdir or tempfile.mkdtemp(prefix="disrnn-alm-"))
    work.mkdir(parents=True, exist_ok=True)
    ds_path = work / "alm.nc"
    if not ds_path.exists():
        bin_dataset("alm", False, ds_path)
    opts = {"groups": tuple(int(g) for g in args.groups.split(",")), **parse_options(args.fit)}
    out = work / "fit"
    c0, t0 = time.process_time(), time.perf_counter()
    fit(ds_path, FitConfig.from_options(args.method, opts), out, seed=args.seed, device="cpu",
        progress=False, force=True)  # fmt: skip
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    evaluate(out, ds_path, work / "eval", seed=0, force=True)
    m = json.loads((work / "eval" / "metrics.json").read_text())
    row = {"method": args.method, "seed": args.seed, "options": args.fit, "fit_s": fit_s,
           "fit_cpu_s": fit_cpu, "co_bps": m["co_bps"], "co_bps_smoothed": m["co_bps_smoothed"],
           "pc": m["pc"]}  # fmt: skip
    print(json.dumps(row), flush=True)
    if args.lags:
        f, ds = load_fit(out), xr.load_dataset(ds_path)
        for lags in (int(x) for x in args.lags.split(",")):
            post = fit_smoothing_posterior(f, ds, seed=0, lags=lags)
            co = cosmoothing_metrics(f, post, ds)["co_bps_smoothed"]
            print(json.dumps({"method": args.method, "seed": args.seed, "lags": lags,
                              "co_bps_smoothed": co}), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
