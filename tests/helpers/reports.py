"""Report-test helpers: contract-following fake evaluation folders and one tiny real
results folder (simulate -> bin -> fit -> evaluate), shared by the report, browser and
notebook tests."""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from disrnn.data.io import clean_attrs, save_dataset

EVIL = "<script>alert('x')</script>"
FAKE_METHODS = ("DisRNN", "lrRNN", "bdRNN")
FAKE_SEEDS = (0, 1)


# ---------------------------------------------------------------------- contract fixture
def fake_dataset(rng: np.random.Generator, n_trials=24, n_time=20, n_units=12) -> xr.Dataset:
    """A FIXTURE dataset following "The dataset" contract (not from the pipeline)."""
    conds = np.array(["left", "right", f"odd {EVIL}"])[np.arange(n_trials) % 3]
    split = np.array(["train", "train", "val", "test"])[np.arange(n_trials) % 4]
    t = (np.arange(n_time) + 0.5) * 0.02 - 0.1
    counts = rng.poisson(2.0, size=(n_trials, n_time, n_units)).astype("int32")
    ds = xr.Dataset(
        {
            "activity": (("trial", "time", "unit"), counts, {"kind": "spike_counts"}),
            "true_latents": (("trial", "time", "latent"), rng.normal(size=(n_trials, n_time, 4))),
        },
        coords={
            "trial": np.arange(n_trials),
            "time": t,
            "unit": np.arange(100, 100 + n_units),
            "split": ("trial", split),
            "condition": ("trial", conds),
            "area": ("unit", np.array(["M1", f"PMd{EVIL}"])[np.arange(n_units) % 2]),
            "heldout": ("unit", np.arange(n_units) >= n_units - 3),
            "latent_group": ("latent", np.array([0, 0, 1, 1])),
        },
        attrs=clean_attrs(
            {
                "source": "dandi",
                "dandiset": "000999",
                "dandiset_version": "0.230101.0000",
                "asset_path": f"sub-X/sub-X_ses-{EVIL}.nwb",
                "nwb_path": "resources/fake.nwb",
                "sha256": "ab" * 32,
                "bin_width": 0.02,
                "alignment": "trials/start_time",
                "window_start": -0.1,
                "window_end": 0.3,
                "filters": {
                    "min_rate": {"value": 1.0, "removed": 2},
                    "duplicates": {"value": "drop", "removed": 1, "pairs": [[7, 3, 0.9, 0.01]]},
                },
                "dropped_trials": {"nan_alignment": 1},
                "kind": "spike_counts",
                "session_description": f"fake session {EVIL}",
            }
        ),
    )
    return ds


def fake_metric_values(method: str, seed: int) -> dict:
    base = {"DisRNN": 0.3, "lrRNN": 0.2, "bdRNN": 0.25}.get(method, 0.1)
    return {
        "co_bps": round(base + 0.01 * seed, 6),
        "test_ll_per_bin_neuron": round(-1.5 + base + 0.003 * seed, 6),
        "bits_per_spike": round(base * 2 + 0.001 * seed, 6),
        "pc": round(1.0 - 2 * base + 0.02 * seed, 6),
        "group_latent_r2": round(0.5 + base + 0.005 * seed, 6),
        "behavior_r2": {"behavior": {"all": round(0.4 + base, 6), "group0": 0.1}},
        "not_applicable": None,
    }


def write_fake_eval(root: Path, session: str, method: str, seed: int, ds: xr.Dataset) -> Path:
    """FIXTURE fit + evaluation folders at the workflow's paths, to the contract."""
    rng = np.random.default_rng(seed + 17 * len(method))
    fit = root / session / "fits" / method / f"seed{seed}"
    ev = root / session / "evals" / method / f"seed{seed}"
    fit.mkdir(parents=True)
    ev.mkdir(parents=True)
    groups = (2, 2) if method != "lrRNN" else (4,)
    (fit / "config.json").write_text(
        json.dumps({"method": method, "groups": groups, "beta": 2.0, "seed": seed})
    )
    rows = ["epoch,split,lr,total,nll,kl,pc,bd"]
    for e in range(15):
        for split in ("train", "val"):
            v = 10 * np.exp(-e / 5) + (0.3 if split == "val" else 0)
            rows.append(f"{e},{split},0.001,{v + 1},{v},{0.5},{0.1},{0.0}")
    (fit / "losses.csv").write_text("\n".join(rows) + "\n")
    (fit / "fit_info.json").write_text(
        json.dumps({"seconds": 1.5, "epochs": 15, "best_epoch": 14, "stop_reason": "max_epochs"})
    )

    metrics = {
        "method": method,
        "seed": seed,
        "session": session,
        **fake_metric_values(method, seed),
    }
    (ev / "metrics.json").write_text(json.dumps(metrics))
    n_tr, n_t, n_u = ds.sizes["trial"], ds.sizes["time"], ds.sizes["unit"]
    lg = np.concatenate([[g] * h for g, h in enumerate(groups)])
    z = rng.normal(size=(n_tr, n_t, 4))
    z[:, 0] = np.nan
    rates = rng.gamma(4.0, 0.5, size=(n_tr, n_t, n_u))
    rates[:, 0] = np.nan
    xr.Dataset(
        {"latents": (("trial", "time", "latent"), z), "rates": (("trial", "time", "unit"), rates)},
        coords={
            "trial": ds["trial"].values,
            "time": ds["time"].values,
            "latent": np.arange(4),
            "latent_group": ("latent", lg),
            "split": ("trial", ds["split"].values),
        },
    ).to_netcdf(ev / "latents.nc", engine="h5netcdf")
    A = rng.normal(size=(n_u, 4))
    B = rng.normal(size=(4, n_u)) * 0.3
    J = B @ A
    ev_j = np.linalg.eigvals(J)
    blocks = [np.linalg.eigvals(J[np.ix_(lg == g, lg == g)]) for g in range(len(groups))]
    bev = np.concatenate(blocks)
    xr.Dataset(
        {
            "W": (("post", "pre"), A @ B),
            "J": (("latent", "latent_in"), J),
            "W_g": (
                ("group", "post", "pre"),
                np.stack([A[:, lg == g] @ B[lg == g] for g in range(len(groups))]),
            ),
            "J_eig_real": ("eig", ev_j.real),
            "J_eig_imag": ("eig", ev_j.imag),
            "block_eig_real": ("block_eig", bev.real),
            "block_eig_imag": ("block_eig", bev.imag),
        },
        coords={
            "post": ds["unit"].values,
            "pre": ds["unit"].values,
            "latent_group": ("latent", lg),
            "group": np.arange(len(groups)),
            "block_eig_group": (
                "block_eig",
                np.concatenate([[g] * b.size for g, b in enumerate(blocks)]),
            ),
        },
    ).to_netcdf(ev / "connectivity.nc", engine="h5netcdf")
    roll = rng.poisson(2.0, size=(n_tr, n_t, n_u)).astype(float)
    roll[:, :2] = np.nan
    xr.Dataset(
        {"rollout": (("trial", "time", "unit"), roll)},
        coords={"trial": ds["trial"].values, "time": ds["time"].values, "unit": ds["unit"].values},
    ).to_netcdf(ev / "rollout.nc", engine="h5netcdf")
    return ev


REAL_METHODS = ("DisRNN", "lrRNN", "lrRNN+ICA")


def build_real_results(root: Path, methods=REAL_METHODS, seeds=(0,), epochs=3) -> dict:
    """Tiny real results folder from the pipeline's Python API, at the workflow's paths:
    ``{root}/{session}/dataset.nc``, ``fits/{method}/seed{s}``, ``evals/{method}/seed{s}``.

    simulate (NWB) -> bin_session -> fit (few epochs) -> evaluate. Skips the calling test
    when a piece of the pipeline is not importable.
    """
    pytest.importorskip("torch")
    try:
        from disrnn.evaluation import evaluate
        from disrnn.fit import fit
        from disrnn.fit.config import FitConfig
    except ImportError as err:
        pytest.skip(f"the pipeline is incomplete: {err}")
    session = "sim_tiny"
    dpath = save_dataset(_tiny_dataset(root.parent / "resources"), root / session / "dataset.nc")
    evals = []
    for method in methods:
        for seed in seeds:
            fdir = root / session / "fits" / method / f"seed{seed}"
            cfg = FitConfig.create(
                method, groups=(3, 3) if method in ("DisRNN", "bdRNN") else (6,), epochs=epochs
            )
            init = None
            if method in ("lrRNN+ICA", "LINT"):
                init = root / session / "fits" / "lrRNN" / f"seed{seed}"
            fit(dpath, cfg, fdir, seed=seed, device="cpu", init_from=init, progress=False)
            edir = root / session / "evals" / method / f"seed{seed}"
            evaluate(fdir, dpath, edir, session=session)
            evals.append(edir)
    return {"session": session, "dataset": dpath, "evals": evals, "root": root}


_SHARED: dict = {}


def shared_real_results(tmp_path_factory) -> dict:
    """One tiny real results folder per test session, shared by the report, browser and
    notebook tests (read-only for them; each renders into its own folder)."""
    if "real" not in _SHARED:
        _SHARED["real"] = build_real_results(tmp_path_factory.mktemp("real") / "results")
    return _SHARED["real"]


TINY = {"n_trials": 30, "n_units": 16, "trial_length": 30}


def _tiny_dataset(resources: Path) -> xr.Dataset:
    """A small simulated session (lorenz-thomas preset, Poisson spikes, behavior).

    Through the NWB file and ``bin_session`` when ``disrnn.simulate.simulate_nwb``
    exists; until then from ``disrnn.simulate.generate.simulate`` directly, laid out
    as "The dataset" contract (a stopgap of this test, not pipeline code).
    """
    import disrnn

    try:
        from disrnn.simulate import simulate_nwb
    except ImportError:
        simulate_nwb = None
    if simulate_nwb is not None:
        nwb = simulate_nwb("lorenz-thomas", resources / "sim_tiny.nwb", seed=0, **TINY)
        cfg = disrnn.BinConfig(bin_width=0.02, behavior=("behavior",), heldout_fraction=0.2)
        return disrnn.bin_session(nwb, cfg)
    from disrnn.simulate.generate import simulate

    sim = simulate("lorenz-thomas", seed=0, **TINY)
    n_trial, n_time, n_unit = sim.activity.shape
    split = np.array(["train", "train", "train", "val", "test"])[np.arange(n_trial) % 5]
    heldout = np.zeros(n_unit, bool)
    heldout[:: max(n_unit // 3, 1)] = True
    return xr.Dataset(
        {
            "activity": (("trial", "time", "unit"), sim.activity, {"kind": sim.kind}),
            "behavior": (("trial", "time", "behavior_dim"), sim.behavior, {"kind": "behavior"}),
            "true_latents": (("trial", "time", "latent"), sim.latents),
            "true_rates": (("trial", "time", "unit"), sim.rates),
            "true_A": (("unit", "latent"), sim.A),
            "true_B": (("latent", "unit"), sim.B),
            "true_bias": ("unit", sim.bias),
        },
        coords={
            "trial": np.arange(n_trial),
            "time": (np.arange(n_time) + 0.5) * sim.bin_width,
            "unit": np.arange(n_unit),
            "split": ("trial", split),
            "condition": ("trial", np.asarray(sim.condition).astype(str)),
            "area": ("unit", np.array(["simulated"] * n_unit)),
            "heldout": ("unit", heldout),
            "latent_group": ("latent", sim.latent_group),
        },
        attrs=clean_attrs(
            {
                "source": "simulated",
                "nwb_path": "",
                "sha256": "",
                "bin_width": sim.bin_width,
                "alignment": "trials/start_time",
                "window_start": 0.0,
                "window_end": n_time * sim.bin_width,
                "filters": {},
                "dropped_trials": {},
                "kind": sim.kind,
            }
        ),
    )


def write_fake_units(ev: Path, ds: xr.Dataset, seed: int, swap: bool = False, n_groups=2):
    """FIXTURE ``units.nc`` to the contract of :mod:`disrnn.evaluation.unit_maps`: the
    first half of the units read group 0 only, the second half group 1 only, except the
    last unit, which reads both equally (mixed); ``swap`` relabels the two groups (as
    another seed may); ``n_groups=1``: one group. Returns the Dataset written."""
    from disrnn.evaluation.unit_maps import unit_groups

    n = ds.sizes["unit"]
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((400, 4))
    A = np.zeros((n, 4))
    half = n // 2
    A[:half, :2] = 1.0
    A[half:, 2:] = 1.0
    A[-1] = 1.0
    if swap:
        A = A[:, [2, 3, 0, 1]]
    groups = np.array([0, 0, 1, 1]) if n_groups == 2 else np.zeros(4, int)
    B = rng.normal(size=(4, n))
    units = unit_groups(A, B, z, groups, ds)
    units.attrs.update({"method": "DisRNN", "seed": seed})
    save_dataset(units, ev / "units.nc")
    return units


def table_cells(text: str, table_id: str) -> list[dict]:
    """(attrs dict, inner text) of every <td> of the table with ``id=table_id``."""
    m = re.search(rf'<table id="{table_id}".*?</table>', text, flags=re.S)
    assert m, f"no table {table_id!r} in the report"
    cells = []
    for tr in re.finditer(r"<tr([^>]*)>(.*?)</tr>", m.group(0), flags=re.S):
        row_attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', tr.group(1)))
        for td in re.finditer(r"<td([^>]*)>(.*?)</td>", tr.group(2), flags=re.S):
            attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', td.group(1)))
            cells.append(
                {
                    **{f"row-{k}": v for k, v in row_attrs.items()},
                    **attrs,
                    "text": htmllib.unescape(td.group(2)),
                }
            )
    return cells
