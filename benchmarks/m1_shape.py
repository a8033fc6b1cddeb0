"""A simulated reaching session of the paper's M1 file's shape: RNN latents against PCA.

    python benchmarks/m1_shape.py                         # both variants, 3 seeds
    python benchmarks/m1_shape.py --variants drift --seeds 1
    python benchmarks/m1_shape.py --variants reach --models "lrRNN K=4,DisRNN 2+2" --fit lr=3e-3

The real M1 recording (168 trials x 14 bins of 50 ms, 154 units, counts rescaled per unit
into [0, 1], hand position) is not in ../shared/. This script simulates one of that shape
and asks whether RNN latents decode hand position worse than PCA with the same K.

The simulation, per trial (seeded):
- a centre-out reach to one of 8 targets: a minimum-jerk path of 10 cm (sd 10 %) lasting
  0.35-0.45 s, starting 0.15-0.25 s into the 0.7 s window from a start jittered by 0.5 cm;
- 154 units whose log-rates sum the hand velocity 100 ms ahead (cosine tuning, every unit),
  the hand position 100 ms ahead (60 % of units), a condition-independent rotation locked to
  movement onset (1.5 Hz, 0.15 s envelope) and a preparatory target signal that fades at
  onset; per-trial gain noise sd 0.1; mean rates 5-20 Hz (15 % sparse units at 1-2.5 Hz);
- variant ``drift`` adds 2 shared log-rate factors that have nothing to do with the reach:
  a random walk across trials plus an Ornstein-Uhlenbeck process within each trial (time
  constant 0.3 s), with gain ``DRIFT_GAIN``;
- Poisson counts in 5 ms steps summed into 50 ms bins, with 10 bins before each window as
  history (``pre_activity``); split 60/20/20 and 25 % of units held out with the package's
  seeded helpers; counts divided by each unit's training maximum
  (:func:`disrnn.data.rescale.rescale_unit_max`), fitted with the Gaussian likelihood.

Methods: lrRNN and DisRNN at K = 4 (DisRNN 2 + 2, beta 2: the tester's settings) and K = 8
(DisRNN 4 + 4, beta 2), ``disrnn.fit`` + ``disrnn.evaluate`` as ``real.py`` does; ``pca``
K = 4 and 8 (:func:`disrnn.evaluation.pca.pca_reference`, same protocol). ``--fit KEY=VALUE``
sets a ``FitConfig`` field of every model (as ``real.py --fit``). Columns: the
evaluation's ``behavior_r2`` (cross-validated ridge from the test latents) of hand position
(from the latents, and from their running sum over the trial's bins) and velocity, the one-step ``recon_r2``, fit seconds; mean +- sd over seeds.

A benchmark, not a test: it asserts nothing. Every number is seeded.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from real import parse_options  # benchmarks/real.py, beside this script
from tables import fmt_mean_sd

N_TRIALS, N_TIME, N_PRE, N_UNITS, BIN, STEP = 168, 14, 10, 154, 0.05, 0.005
LEAD_S = 0.10  # neurons lead the hand
DRIFT_GAIN = 0.3
VARIANTS = {"reach": 0.0, "drift": DRIFT_GAIN}
#: (label, method, groups, beta)
MODELS = (
    ("lrRNN K=4", "lrRNN", (4,), None),
    ("DisRNN 2+2", "DisRNN", (2, 2), 2.0),
    ("lrRNN K=8", "lrRNN", (8,), None),
    ("DisRNN 4+4", "DisRNN", (4, 4), 2.0),
)


def _reach(rng, n_tr):
    """Per-trial reach parameters and a function t (s, rel. window) -> (pos, vel) (trial,
    time, 2) in cm and cm/s (minimum jerk)."""
    ang = 2 * np.pi * rng.integers(0, 8, n_tr) / 8
    onset, dur = rng.uniform(0.15, 0.25, n_tr), rng.uniform(0.35, 0.45, n_tr)
    dist = 10.0 * (1 + 0.1 * rng.standard_normal(n_tr))
    start = 0.5 * rng.standard_normal((n_tr, 2))
    u = np.stack([np.cos(ang), np.sin(ang)], -1)[:, None]

    def kinematics(t):
        s = np.clip((t[None] - onset[:, None]) / dur[:, None], 0, 1)
        frac = 10 * s**3 - 15 * s**4 + 6 * s**5
        dfrac = (30 * s**2 - 60 * s**3 + 30 * s**4) / dur[:, None]
        return start[:, None] + (dist[:, None] * frac)[..., None] * u, (dist[:, None] * dfrac)[
            ..., None
        ] * u

    return ang, onset, kinematics


def _drift(rng, n_tr, t, n_factors=2, tau=0.3):
    """(trial, time, factor) random walk across trials + OU process within each trial."""
    across = np.cumsum(rng.standard_normal((n_tr, n_factors)), 0) / np.sqrt(n_tr) * 2
    a = np.exp(-STEP / tau)
    ou = np.zeros((n_tr, t.size, n_factors))
    ou[:, 0] = rng.standard_normal((n_tr, n_factors))
    for i in range(1, t.size):
        ou[:, i] = a * ou[:, i - 1] + np.sqrt(1 - a * a) * rng.standard_normal((n_tr, n_factors))
    return across[:, None] + ou


def simulate(seed: int, drift_gain: float):
    """The session as the package's data model (counts, before the rescaling)."""
    import xarray as xr

    from disrnn.data import splits
    from disrnn.data.io import BEHAVIOR_KIND, clean_attrs

    rng = np.random.default_rng(1000 + seed)
    k, n_tr, n_u = round(BIN / STEP), N_TRIALS, N_UNITS
    t = (np.arange((N_PRE + N_TIME) * k) + 0.5) * STEP - N_PRE * BIN  # s from window start
    ang, onset, kinematics = _reach(rng, n_tr)
    pos, vel = kinematics(t)
    pos_n, vel_n = kinematics(t + LEAD_S)
    tau = t[None] - (onset[:, None] - LEAD_S)  # s from the neural movement onset
    env, w = np.exp(-0.5 * ((tau - 0.1) / 0.15) ** 2), 2 * np.pi * 1.5
    rotation = np.stack([env * np.cos(w * tau), env * np.sin(w * tau)], -1)
    prep = (1 / (1 + np.exp(tau / 0.03)))[..., None] * np.stack([np.cos(ang), np.sin(ang)], -1)[
        :, None
    ]

    def tuning(gain):  # (2, unit) cosine tuning to a random preferred direction
        phi = rng.uniform(0, 2 * np.pi, n_u)
        return (gain[:, None] * np.stack([np.cos(phi), np.sin(phi)], -1)).T

    sparse = rng.random(n_u) < 0.15
    base_hz = np.where(
        sparse, rng.uniform(1, 2.5, n_u), np.exp(rng.uniform(np.log(5), np.log(20), n_u))
    )
    eta = vel_n / (1.875 * 10.0 / 0.4) @ tuning(rng.uniform(0.8, 1.6, n_u))
    eta += pos_n / 10.0 @ tuning(np.where(rng.random(n_u) < 0.6, rng.uniform(0.8, 1.5, n_u), 0.0))
    eta += rotation @ tuning(rng.uniform(0.3, 0.9, n_u) * rng.choice([-1, 1], n_u))
    eta += prep @ tuning(rng.uniform(0.0, 0.4, n_u))
    if drift_gain > 0:
        eta += drift_gain * _drift(rng, n_tr, t) @ rng.standard_normal((2, n_u))
    eta = eta - eta.mean((0, 1)) + 0.1 * rng.standard_normal((n_tr, 1, n_u))
    fine = rng.poisson(base_hz * np.exp(eta) * STEP)
    counts = fine.reshape(n_tr, -1, k, n_u).sum(2).astype(np.int32)
    binned = [v.reshape(n_tr, -1, k, 2).mean(2)[:, N_PRE:] for v in (pos, vel)]
    split_rng, heldout_rng = splits.generators(seed)
    split = splits.split_trials(n_tr, (0.6, 0.2, 0.2), split_rng)
    heldout, _ = splits.choose_heldout(n_u, 0.25, heldout_rng, None, mode="random")
    beh = {"kind": BEHAVIOR_KIND}
    return xr.Dataset(
        {
            "activity": (("trial", "time", "unit"), counts[:, N_PRE:], {"kind": "spike_counts"}),
            "pre_activity": (
                ("trial", "pre_time", "unit"),
                counts[:, :N_PRE],
                {"kind": "spike_counts"},
            ),
            "pre_mask": (("trial", "pre_time"), np.ones((n_tr, N_PRE), bool)),
            "hand_pos": (("trial", "time", "hand_pos_dim"), binned[0], beh),
            "hand_vel": (("trial", "time", "hand_vel_dim"), binned[1], beh),
        },
        coords={
            "trial": np.arange(n_tr),
            "time": (np.arange(N_TIME) + 0.5) * BIN,
            "pre_time": (np.arange(-N_PRE, 0) + 0.5) * BIN,
            "unit": np.arange(n_u),
            "split": ("trial", split),
            "heldout": ("unit", heldout),
            "condition": ("trial", np.array([f"target{round(a / (np.pi / 4))}" for a in ang])),
        },
        attrs=clean_attrs(
            {
                "bin_width": BIN,
                "kind": "spike_counts",
                "source": "m1_shape.py",
                "sha256": "",
                "seed": seed,
                "drift_gain": drift_gain,
            }
        ),  # fmt: skip
    )


def _scores(m: dict) -> dict:
    beh = m.get("behavior_r2") or {}
    return {
        "pos": beh.get("hand_pos", {}).get("all"),
        "pos_sum": beh.get("hand_pos", {}).get("running_sum"),
        "vel": beh.get("hand_vel", {}).get("all"),
        "recon": m.get("recon_r2"),
    }


def run_variant(name: str, seeds: list[int], work: Path, models=MODELS, options=None) -> list[dict]:
    import torch

    from disrnn.data.io import save_dataset
    from disrnn.data.rescale import rescale_unit_max
    from disrnn.evaluation import evaluate
    from disrnn.evaluation.pca import pca_reference
    from disrnn.fit import fit
    from disrnn.fit.config import FitConfig

    torch.set_num_threads(1)
    rows = []
    for seed in seeds:
        path = save_dataset(
            rescale_unit_max(simulate(seed, VARIANTS[name])), work / f"{name}{seed}.nc"
        )
        for K in (4, 8):
            res = pca_reference(path, K, seed=0, condition="condition", history=1)
            rows.append(
                {"variant": name, "model": f"pca K={K}", "seed": seed, **_scores(res.metrics)}
            )
        for label, method, groups, beta in models:
            opts = {
                "groups": groups,
                **({"beta": beta} if beta is not None else {}),
                **(options or {}),
            }
            out = work / f"{name}{seed}" / label.replace(" ", "_")
            t0 = time.perf_counter()
            fit(
                path,
                FitConfig.from_options(method, opts),
                out,
                seed=seed,
                device="cpu",
                progress=False,
            )
            seconds = time.perf_counter() - t0
            m = json.loads(
                (evaluate(out, path, out.with_suffix(".eval"), seed=0) / "metrics.json").read_text()
            )
            row = {"variant": name, "model": label, "seed": seed, "seconds": seconds, **_scores(m)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    cols = (("pos", "hand position R2"), ("pos_sum", "position R2, running sum"),
            ("vel", "hand velocity R2"), ("recon", "recon R2"), ("seconds", "fit s"))  # fmt: skip
    lines = [
        "| variant | model | " + " | ".join(c for _, c in cols) + " | n |",
        "|---" * (len(cols) + 3) + "|",
    ]
    for variant in VARIANTS:
        for model in (
            "pca K=4",
            *(m[0] for m in MODELS[:2]),
            "pca K=8",
            *(m[0] for m in MODELS[2:]),
        ):
            sel = [r for r in rows if r["variant"] == variant and r["model"] == model]
            if sel:
                cells = [fmt_mean_sd([r.get(k) for r in sel]) for k, _ in cols]
                lines.append(f"| {variant} | {model} | " + " | ".join(cells) + f" | {len(sel)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: reach, drift")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (session and fit)")
    p.add_argument(
        "--models", default=",".join(m[0] for m in MODELS), help="comma-separated labels"
    )
    p.add_argument("--fit", nargs="*", default=[], metavar="KEY=VALUE", help="FitConfig fields")
    args = p.parse_args(argv)
    labels = args.models.split(",")
    models = [m for m in MODELS if m[0] in labels]
    if len(models) != len(labels):
        p.error(f"--models: unknown label in {labels}; choose from {[m[0] for m in MODELS]}")
    seeds, options = list(range(args.seeds)), parse_options(args.fit)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            r
            for v in args.variants.split(",")
            for r in run_variant(v, seeds, Path(tmp), models, options)
        ]
    print(table(rows))
    print(f"wall {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
