"""Unit maps (which units form each latent group) and the simulator's areas.

Truths: a closed form of the shares for whitened latents, explicit loops for the drive and
the area table, scikit-learn's adjusted Rand index, and the simulator's own areas (each
group drives its own units) that a DisRNN fit must recover.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.metrics import adjusted_rand_score

from disrnn.evaluation.unit_maps import (
    DOMINANT_SHARE,
    area_table,
    group_shares,
    match_groups,
    seed_agreement,
    unit_groups,
)


def _whitened(rng, n: int, k: int) -> np.ndarray:
    """(n, k) samples with sample mean 0 and sample covariance exactly I (ddof 0)."""
    z = rng.standard_normal((n, k))
    z -= z.mean(0)
    L = np.linalg.cholesky(z.T @ z / n)
    return z @ np.linalg.inv(L).T


def test_shares_equal_squared_readout_norms_for_whitened_latents():
    """With latents of identity covariance, Var(A_g z_g) of unit i is ||A[i, g]||^2."""
    rng = np.random.default_rng(0)
    groups = np.array([0, 0, 0, 1, 1, 2])
    A = rng.standard_normal((9, 6))
    z = _whitened(rng, 500, 6)
    labels, var, share = group_shares(A, z, groups)
    want = np.stack([(A[:, groups == g] ** 2).sum(1) for g in (0, 1, 2)], axis=1)
    np.testing.assert_array_equal(labels, [0, 1, 2])
    np.testing.assert_allclose(var, want, rtol=1e-10)
    np.testing.assert_allclose(share, want / want.sum(1, keepdims=True), rtol=1e-10)
    # non-finite rows (history-only bins) are dropped, not propagated
    z_nan = np.vstack([np.full((3, 6), np.nan), z])
    np.testing.assert_allclose(group_shares(A, z_nan, groups)[2], share, rtol=1e-10)
    with pytest.raises(ValueError, match="must agree"):
        group_shares(A[:, :5], z, groups)


def test_drive_dominant_threshold_and_unit_metadata():
    rng = np.random.default_rng(1)
    groups = np.array([0, 0, 1, 1])
    z = _whitened(rng, 400, 4)
    # unit rows: pure group 0; share 0.6 / 0.4 (below 2/3: mixed); 0.7 / 0.3; pure 1; silent
    rows = [(1, 0), (np.sqrt(0.6), np.sqrt(0.4)), (np.sqrt(0.7), np.sqrt(0.3)), (0, 1), (0, 0)]
    A = np.array([[a, 0.0, b, 0.0] for a, b in rows])
    B = rng.standard_normal((4, 5))
    ids = np.array([11, 42, 7, 3, 90])
    meta = xr.Dataset(
        coords={
            "unit": ids,
            "area": ("unit", ["M1", "M1", "PMd", "PMd", "PMd"]),
            "depth": ("unit", [100.0, 200.0, 300.0, 400.0, 500.0]),
        }
    )
    u = unit_groups(A, B, z, groups, meta)
    np.testing.assert_allclose(u["share"].values[:4, 0], [1.0, 0.6, 0.7, 0.0], atol=1e-10)
    assert u["dominant"].values.tolist() == ["0", "mixed", "0", "1", "mixed"]
    assert u["assignment"].values.tolist() == [0, 0, 0, 1, -1]
    for i in range(5):  # drive: the norm of unit i's column in B_g, by explicit loops
        for j, g in enumerate((0, 1)):
            want = np.sqrt(sum(B[k, i] ** 2 for k in range(4) if groups[k] == g))
            assert u["drive"].values[i, j] == pytest.approx(want)
    np.testing.assert_array_equal(u["unit"].values, ids)
    np.testing.assert_array_equal(u["depth"].values, meta["depth"].values)
    assert u.attrs["dominant_share"] == DOMINANT_SHARE
    # the area table: mean shares and dominant counts per area, by hand
    assert u["brain_area"].values.tolist() == ["M1", "PMd"]
    np.testing.assert_allclose(u["area_share"].sel(brain_area="M1").values, [0.8, 0.2])
    np.testing.assert_allclose(
        u["area_share"].sel(brain_area="PMd").values, [0.35, 0.65], atol=1e-10
    )  # the silent unit has no share: left out of the mean
    assert u["area_units"].values.tolist() == [2, 3]
    assert u["area_dominant"].sel(brain_area="PMd").values.tolist() == [1, 1, 1]
    assert area_table(u)["area_dominant"].sel(brain_area="M1", label="mixed").item() == 1


def test_seed_agreement_is_label_free_and_matches_sklearn():
    rng = np.random.default_rng(2)
    share = rng.dirichlet([0.3, 0.3, 0.3], size=30)  # (unit, group)

    def umap(s, seed):
        a = s.argmax(1)
        return xr.Dataset(
            {"share": (("unit", "group"), s), "assignment": ("unit", a)},
            coords={"unit": np.arange(30), "group": [0, 1, 2]},
            attrs={"seed": seed},
        )

    perm = [2, 0, 1]  # seed 1 = seed 0 with its groups relabelled
    s1 = share[:, perm]
    assert match_groups(share, s1) == {0: 2, 1: 0, 2: 1}
    s2 = share.copy()
    s2[:4] = s2[:4, ::-1]  # seed 2 moves a few units
    maps = [umap(share, 0), umap(s1, 1), umap(s2, 2)]
    ag = seed_agreement(maps)
    assert ag["ari"]["0-1"] == pytest.approx(1.0)
    a0, a2 = share.argmax(1), s2.argmax(1)
    assert ag["ari"]["0-2"] == pytest.approx(adjusted_rand_score(a0, a2))
    assert ag["ari_min"] == pytest.approx(min(ag["ari"].values()))
    np.testing.assert_array_equal(ag["matched"][1], a0)  # relabelled onto seed 0's groups
    moved = a0 != ag["matched"][2]
    np.testing.assert_allclose(ag["unit_agreement"], np.where(moved, 2 / 3, 1.0))
    assert seed_agreement(maps[:1])["ari_mean"] is None
    assert ag["ari_dominant_mean"] is None  # no dominant labels: no such ARI
    # on the units one group dominates (share >= 2/3) in both seeds of a pair
    dom = [
        m.assign(dominant=("unit", np.where(m["share"].values.max(1) >= 2 / 3, "x", "mixed")))
        for m in maps
    ]
    ag = seed_agreement(dom)
    firm = [m["dominant"].values != "mixed" for m in dom]
    want = []
    for i, j in ((0, 1), (0, 2), (1, 2)):
        k = firm[i] & firm[j]
        want.append(
            adjusted_rand_score(dom[i]["assignment"].values[k], dom[j]["assignment"].values[k])
        )
    assert 0 < (firm[0] & firm[2]).sum() < 30
    assert ag["ari_dominant_mean"] == pytest.approx(np.mean(want))
    assert ag["ari_dominant_min"] == pytest.approx(np.min(want))
    # every unit in one group in both seeds: sklearn's 1.0 says nothing, so no ARI
    one = share.copy()
    one[:, 0] = 1.0
    assert seed_agreement([umap(one, 0), umap(one[:, perm], 1)])["ari_mean"] is None
    with pytest.raises(ValueError, match="different units"):
        seed_agreement([maps[0], maps[1].assign_coords(unit=np.arange(30) + 1)])


# ---------------------------------------------------------------------- simulated areas
def test_simulator_areas_drive_their_own_units_and_label_the_electrodes(tmp_path):
    import disrnn
    from disrnn.simulate import simulate, simulate_nwb

    small = {"n_trials": 12, "n_units": 14, "trial_length": 20}
    dense = simulate("lorenz-thomas", seed=3, **small)
    disjoint = simulate("lorenz-thomas", seed=3, area_overlap=0.0, **small)
    half = simulate("lorenz-thomas", seed=3, area_overlap=0.5, **small)
    assert dense.unit_area is None
    np.testing.assert_array_equal(disjoint.latents, dense.latents)  # same streams
    areas = ["area0"] * 7 + ["area1"] * 7
    assert disjoint.unit_area.tolist() == areas == half.unit_area.tolist()
    g = dense.latent_group
    reads = np.abs(disjoint.A) > 0
    np.testing.assert_array_equal(reads[:7], np.broadcast_to(g == 0, (7, 6)))
    np.testing.assert_array_equal(reads[7:], np.broadcast_to(g == 1, (7, 6)))
    # half overlap: the last round(0.5 * 7) = 4 units of each area also read the next group
    both = (np.abs(half.A) > 0).all(1)
    assert np.flatnonzero(both).tolist() == [3, 4, 5, 6, 10, 11, 12, 13]
    # each unit's drive keeps the dense readout's scale: sqrt(K / K_read) on what it reads
    np.testing.assert_allclose(disjoint.A[:7, :3], dense.A[:7, :3] * np.sqrt(2.0))
    path = simulate_nwb("lorenz-thomas", tmp_path / "areas.nwb", seed=3, area_overlap=0, **small)
    ds = disrnn.bin_session(path, disrnn.BinConfig(bin_width=0.02))
    assert ds["area"].values.tolist() == areas
    from disrnn.cli import main  # the CLI's --area-overlap writes the same file

    cli = tmp_path / "cli.nwb"
    argv = ["simulate", "--preset", "lorenz-thomas", "--out", str(cli), "--seed", "3"]
    argv += ["--n-trials", "12", "--n-units", "14", "--area-overlap", "0"]
    assert main(argv) == 0
    from disrnn.simulate import read_truth

    np.testing.assert_allclose(read_truth(cli)["A"], disjoint.A)
    for bad, match in ((1.5, r"in \[0, 1\]"), ("half", "a number")):
        with pytest.raises(ValueError, match=match):
            simulate("lorenz-thomas", area_overlap=bad, **small)
    with pytest.raises(ValueError, match="spiking sessions"):
        simulate("paper-gaussian", area_overlap=0.0)
    from disrnn.simulate.areas import check_area_overlap

    with pytest.raises(ValueError, match=r"area0 gets 3 .* has 4 latents; use n_units >= 8"):
        check_area_overlap(0.0, "spike_counts", 6, (4, 1))


RECOVERY = {"n_trials": 80, "n_units": 30, "trial_length": 50}


@pytest.fixture(scope="module")
def disjoint_fit(tmp_path_factory):
    """A DisRNN (3 + 3) fit and evaluation of a session whose two groups drive disjoint
    areas of units (simulated, Poisson spikes)."""
    pytest.importorskip("torch")
    import disrnn
    from disrnn.evaluation import evaluate
    from disrnn.fit import FitConfig, fit, load_fit
    from disrnn.simulate import simulate_nwb

    root = tmp_path_factory.mktemp("areas")
    nwb = simulate_nwb("lorenz-thomas", root / "s.nwb", seed=2, area_overlap=0.0, **RECOVERY)
    ds = disrnn.bin_session(nwb, disrnn.BinConfig(bin_width=0.02, heldout_fraction=0.0))
    cfg = FitConfig.from_options("DisRNN", {"groups": [3, 3], "epochs": 30})
    f = load_fit(fit(ds, cfg, root / "fit", seed=2, device="cpu", progress=False))
    ev = evaluate(f, ds, root / "eval", session="areas", smoothing_posterior=False)
    return {"fit": f, "ds": ds, "eval": ev}


def test_disrnn_unit_assignment_recovers_disjoint_areas(disjoint_fit):
    import json

    f, ds, ev = disjoint_fit["fit"], disjoint_fit["ds"], disjoint_fit["eval"]
    units = f.unit_groups(ds)
    area = ds["area"].values.astype(str)
    ari = adjusted_rand_score(area, units["assignment"].values)
    assert ari >= 0.9, ari
    # the evaluation folder holds the same map, and its metric is that ARI
    saved = xr.open_dataset(ev / "units.nc", engine="h5netcdf").load()
    np.testing.assert_allclose(saved["share"].values, units["share"].values)
    m = json.loads((ev / "metrics.json").read_text())
    assert m["unit_area_ari"] == pytest.approx(ari)
    assert m["unit_assignment_ari_true"] >= 0.9  # against true_A's own shares
    # the area table: each area is carried by one group, a different one per area
    table = saved["area_share"]
    assert table["brain_area"].values.tolist() == ["area0", "area1"]
    best = table.values.argmax(1)
    assert best[0] != best[1]
    assert table.values.max(1).min() >= 0.9
    assert saved["area_units"].values.tolist() == [15, 15]


def test_areas_show_up_in_the_session_report(disjoint_fit, tmp_path):
    """The report's area table has one row per simulated area, with the unit count and
    the area's mean share of the group that carries it."""
    import re

    from helpers.reports import table_cells

    from disrnn.data.io import save_dataset
    from disrnn.report import render_session_report
    from disrnn.report.render import fmt

    ds, ev = disjoint_fit["ds"], disjoint_fit["eval"]
    dpath = save_dataset(ds, tmp_path / "dataset.nc")
    text = render_session_report("areas", dpath, [ev], tmp_path / "r.html").read_text()
    saved = xr.open_dataset(ev / "units.nc", engine="h5netcdf").load()
    cells = table_cells(text, "m-DisRNN-area-table")
    for area in ("area0", "area1"):
        row = [c["text"] for c in cells if c["row-data-area"] == area]
        assert row[:2] == [area, "15"]
        share = saved["area_share"].sel(brain_area=area).values
        assert row[2:4] == [fmt(v, 3) for v in share]
        assert max(float(v) for v in row[2:4]) >= 0.9
    box = re.sub(r"<[^>]+>", "", text[text.index('id="summary"') : text.index('id="provenance"')])
    m = re.search(r"Groups against brain areas: adjusted Rand index ([-\d.]+)", box)
    assert m and float(m.group(1)) >= 0.9
