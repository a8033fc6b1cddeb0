"""An NWB file shaped like an NLB MC_Maze train file, through binning and the reference.

    python benchmarks/nlb_shape.py                # lags 0 and 0.1 s, seed 0
    python benchmarks/nlb_shape.py --lags 0,0.05,0.1,0.15 --seed 1

No NLB file is reachable here, so this script writes one of its structure (simulated
data, seeded): a continuous recording with 100 trials of 2.5 s (75 marked ``train`` and
25 ``val`` in a trial column ``split``, a ragged ``target_pos`` column, move onset
times), 142 units of which 35 are marked in a ``heldout`` unit column, hand velocity at
1 kHz in the ``behavior`` processing module with a stretch of NaNs. Each unit's rate is
exp-tuned to the hand velocity 0.1 s *later* (motor cortex leads the hand: the lag NLB
decodes MC_Maze with). It then bins the file as the MC_Maze_Small example config does
(move onset -0.25..0.45 s, 20 ms, test trials = the file's ``val`` trials, held-out
units from the file) at each ``--lags`` value of ``behavior_lag`` and scores the
smoothing reference (:func:`disrnn.evaluation.run_reference`): co-bps and NLB's
velocity decoding R^2. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

LEAD = 0.1  # s: the units' rates follow the hand velocity this much later


def write_nlb_shaped(path: Path, seed: int) -> Path:
    """Write the MC_Maze-shaped NWB file described in the module docstring."""
    import pynwb
    from pynwb.testing.mock.file import mock_NWBFile

    rng = np.random.default_rng(seed)
    n_trials, n_units, n_heldout, dt = 100, 142, 35, 1e-3
    starts = 1.0 + np.concatenate([[0.0], np.cumsum(rng.uniform(2.6, 3.2, n_trials - 1))])
    move = starts + rng.uniform(1.2, 1.6, n_trials)
    angle = rng.integers(0, 8, n_trials) * np.pi / 4
    t = np.arange(0.0, starts[-1] + 4.5, dt)
    vel = np.zeros((t.size, 2))
    for m, a in zip(move, angle, strict=True):  # a bell-shaped reach 0.2 s after onset
        bump = 0.3 * np.exp(-0.5 * ((t - m - 0.2) / 0.1) ** 2)
        vel += bump[:, None] * np.array([np.cos(a), np.sin(a)])
    ahead = np.stack([np.interp(t + LEAD, t, vel[:, d]) for d in range(2)], 1)
    pd = rng.uniform(0, 2 * np.pi, n_units)
    rate = rng.uniform(2, 30, n_units) * np.exp(
        2.0 * (ahead[:, :1] * np.cos(pd) + ahead[:, 1:] * np.sin(pd))
    )  # (time, unit) Hz
    nwb = mock_NWBFile()
    nwb.add_unit_column(name="heldout", description="held out (NLB)")
    heldout = np.zeros(n_units, bool)
    heldout[rng.choice(n_units, n_heldout, replace=False)] = True
    for u in range(n_units):
        spikes = t[rng.random(t.size) < rate[:, u] * dt]
        nwb.add_unit(spike_times=spikes, obs_intervals=[[0.0, t[-1]]], heldout=heldout[u])
    for name in ("split", "move_onset_time", "trial_type"):
        nwb.add_trial_column(name=name, description=name)
    nwb.add_trial_column(name="target_pos", description="targets (ragged)", index=True)
    split = rng.permutation(np.array(["train"] * 75 + ["val"] * 25))
    for i in range(n_trials):
        targets = rng.normal(size=(int(rng.integers(1, 4)), 2)).tolist()
        nwb.add_trial(start_time=starts[i], stop_time=starts[i] + 2.5, split=split[i],
                      move_onset_time=move[i], trial_type=int(angle[i] / (np.pi / 4)),
                      target_pos=targets)  # fmt: skip
    vel[(t > 20.0) & (t < 21.5)] = np.nan  # a gap in the behaviour, as NLB files have
    behavior = nwb.create_processing_module(name="behavior", description="behavior")
    behavior.add(pynwb.TimeSeries(name="hand_vel", data=vel, timestamps=t, unit="m/s"))
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lags", default="0,0.1", help="behavior_lag values (s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from disrnn.data.binning import BinConfig, bin_session
    from disrnn.data.io import save_dataset
    from disrnn.evaluation import run_reference

    with tempfile.TemporaryDirectory() as tmp:
        nwb = write_nlb_shaped(Path(tmp) / "mc_maze_shaped.nwb", args.seed)
        print("| behavior_lag (s) | co-bps | velocity decoding R2 | test trials | held-out units |")
        print("|---|---|---|---|---|")
        for lag in (float(v) for v in args.lags.split(",")):
            cfg = BinConfig(bin_width=0.02, trials="trials", align="move_onset_time",
                            window=(-0.25, 0.45), behavior=("hand_vel",), behavior_lag=lag,
                            test_trials=("split", ("val",)), heldout="file")  # fmt: skip
            ds = bin_session(nwb, cfg)
            data = save_dataset(ds, Path(tmp) / f"lag{lag}.nc")
            out = run_reference(data, Path(tmp) / f"ref{lag}", method="smoothing")
            m = json.loads((Path(out) / "metrics.json").read_text())
            n_test = int((ds["split"].values.astype(str) == "test").sum())
            print(f"| {lag:g} | {m['co_bps']:.3f} | {m['behavior_r2_nlb']['hand_vel']:.3f} | "
                  f"{n_test} | {int(ds['heldout'].values.sum())} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
