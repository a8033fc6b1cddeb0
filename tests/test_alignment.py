"""Group alignment: affine maps and Hungarian matching of latent groups."""

import numpy as np
import pytest

from disrnn.evaluation.alignment import (
    affine_r2,
    align_groups,
    component_r2,
    flatten_latents,
    match_groups,
    pair_r2_matrix,
)


def _mix(rng, z):
    """An invertible (well-conditioned) mixing of the columns of z, plus an offset."""
    q, _ = np.linalg.qr(rng.standard_normal((z.shape[1], z.shape[1])))
    scale = np.diag(rng.uniform(0.5, 2.0, z.shape[1]))
    return z @ (q @ scale) + rng.standard_normal(z.shape[1])


def test_known_permutation_and_mixing_of_groups_is_recovered():
    rng = np.random.default_rng(0)
    z_true = rng.standard_normal((3000, 6))
    labels_true = np.array([0, 0, 0, 1, 1, 1])
    # inferred groups: true group 1 first (labels 4), then true group 0 (labels 9), each mixed
    z_inf = np.concatenate([_mix(rng, z_true[:, 3:]), _mix(rng, z_true[:, :3])], axis=1)
    labels_inf = np.array([4, 4, 4, 9, 9, 9])

    res = align_groups(z_inf, labels_inf, z_true, labels_true)
    assert res.matching == [(9, 0), (4, 1)]
    assert res.group_r2 == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(res.component_r2, 1.0, atol=1e-10)
    # off-diagonal pairs are unrelated: R^2 ~ 0 (3 predictors, 3000 samples)
    assert res.pair_r2[0, 0] < 0.02 and res.pair_r2[1, 1] < 0.02
    assert res.pair_r2[0, 1] == pytest.approx(1.0) and res.pair_r2[1, 0] == pytest.approx(1.0)

    # cross-validated: maps fitted on even samples, scored on odd samples
    train = np.arange(3000) % 2 == 0
    cv = align_groups(z_inf, labels_inf, z_true, labels_true, train=train)
    assert cv.matching == res.matching
    assert cv.group_r2 == pytest.approx(1.0, abs=1e-10)


def test_mixing_across_groups_lowers_group_r2_but_not_the_global_map():
    rng = np.random.default_rng(1)
    z_true = rng.standard_normal((3000, 4))
    labels = np.array([0, 0, 1, 1])
    z_inf = _mix(rng, z_true)  # mixes all four latents: groups are not separated
    res = align_groups(z_inf, labels, z_true, labels)
    assert affine_r2(z_inf, z_true) == pytest.approx(1.0)
    assert res.group_r2 < 0.8


def test_unrelated_latents_give_low_r2_out_of_sample():
    rng = np.random.default_rng(2)
    z_true = rng.standard_normal((2000, 4))
    z_inf = rng.standard_normal((2000, 4))
    labels = [0, 0, 1, 1]
    res = align_groups(z_inf, labels, z_true, labels)
    assert res.group_r2 < 0.01
    train = np.arange(2000) < 1000
    cv = align_groups(z_inf, labels, z_true, labels, train=train)
    assert cv.group_r2 < 0.01  # cross-validated R^2 of noise is ~0 (or negative)


def test_unequal_group_sizes_and_counts():
    rng = np.random.default_rng(3)
    # true: groups of sizes 1, 2, 3
    z_true = rng.standard_normal((2000, 6))
    labels_true = np.array([0, 1, 1, 2, 2, 2])
    # inferred: only two groups, sizes 3 (-> true group 2) and 2 (-> true group 1)
    z_inf = np.concatenate([_mix(rng, z_true[:, 3:6]), _mix(rng, z_true[:, 1:3])], axis=1)
    labels_inf = np.array([0, 0, 0, 1, 1])
    r2 = pair_r2_matrix(z_inf, labels_inf, z_true, labels_true)
    assert r2.shape == (2, 3)
    assert match_groups(r2) == [(1, 1), (0, 2)]
    res = align_groups(z_inf, labels_inf, z_true, labels_true)
    assert res.matching == [(1, 1), (0, 2)]
    assert res.matched_r2[0] == 0.0  # the unmatched true group
    assert res.matched_r2[1] == pytest.approx(1.0) and res.matched_r2[2] == pytest.approx(1.0)
    # the unmatched true group (1 of 6 unit-variance dims) is predicted by its mean
    assert res.group_r2 == pytest.approx(5 / 6, abs=0.01)
    np.testing.assert_allclose(res.component_r2[1:], 1.0, atol=1e-10)
    assert res.component_r2[0] == 0.0

    # more inferred groups than true ones: the extra inferred group stays unmatched
    z_inf3 = np.concatenate([z_inf, rng.standard_normal((2000, 2))], axis=1)
    res3 = align_groups(z_inf3, [0, 0, 0, 1, 1, 7, 7], z_true[:, 1:], [1, 1, 2, 2, 2])
    assert res3.matching == [(1, 1), (0, 2)]
    assert res3.group_r2 == pytest.approx(1.0)


def test_hungarian_beats_greedy():
    # greedy on the largest entry would take (0, 0) = 0.9 and leave (1, 1) = 0.1
    r2 = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert match_groups(r2) == [(1, 0), (0, 1)]


def test_single_component_matching_and_nan_rows():
    rng = np.random.default_rng(4)
    z_true = rng.standard_normal((500, 3))
    z_inf = z_true[:, [2, 0, 1]] * np.array([2.0, -1.0, 0.5]) + 3.0
    np.testing.assert_allclose(component_r2(z_inf, z_true), 1.0)
    # leading history bins are NaN in fitted latents: flatten and drop them
    z3 = z_inf.reshape(5, 100, 3).copy()
    z3[:, 0] = np.nan
    flat = flatten_latents(z3)
    res = align_groups(flat, [0, 0, 0], z_true, [0, 0, 0])
    assert res.group_r2 == pytest.approx(1.0)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="samples"):
        pair_r2_matrix(np.zeros((5, 2)), [0, 0], np.zeros((4, 2)), [0, 0])
    with pytest.raises(ValueError, match="labels"):
        pair_r2_matrix(np.zeros((5, 2)), [0], np.zeros((5, 2)), [0, 0])


def test_partitions_for_fits_without_matching_groups():
    from disrnn.evaluation.alignment import best_partition, contiguous_labels

    np.testing.assert_array_equal(contiguous_labels((1, 2)), [0, 1, 1])
    with pytest.raises(ValueError, match="positive"):
        contiguous_labels((2, 0))
    rng = np.random.default_rng(5)
    z_true = rng.standard_normal((2000, 5))
    labels_true = np.array([0, 0, 0, 1, 1])
    # single inferred latents, each a scaled copy of one true latent, in shuffled order
    order = np.array([3, 0, 4, 2, 1])
    z_inf = z_true[:, order] * rng.uniform(0.5, 2, 5) + 1.0
    part = best_partition(z_inf, z_true, labels_true)
    np.testing.assert_array_equal(part, labels_true[order])
    assert align_groups(z_inf, part, z_true, labels_true).group_r2 == pytest.approx(1.0)
    # the contiguous split of a shuffled order is worse
    assert align_groups(z_inf, contiguous_labels((3, 2)), z_true, labels_true).group_r2 < 0.9
    with pytest.raises(ValueError, match="as many"):
        best_partition(z_inf[:, :4], z_true, labels_true)
