"""The extra long-range tasks: positions, labels, determinism."""

import math

import numpy as np
import pytest

from tasks import selective_copy, temporal_order


@pytest.mark.parametrize("T", [1, 7, 40])
def test_selective_copy_scatters_ten_symbols_and_recalls_them_in_order(T):
    data = selective_copy.generate(T, 300, np.random.default_rng(0))
    inputs, targets = data["inputs"], data["targets"]
    assert inputs.shape == targets.shape == (300, T + 21)
    head = inputs[:, : T + 10]
    assert ((head > 0).sum(axis=1) == 10).all() and head.max() <= 8
    assert (inputs[:, T + 10] == 9).all() and (inputs[:, T + 11 :] == 0).all()
    assert (targets[:, : T + 11] == 0).all()
    for row in range(300):
        np.testing.assert_array_equal(targets[row, -10:], head[row][head[row] > 0])
    assert selective_copy.memoryless_baseline({"T": T}) == pytest.approx(10 * math.log(8) / (T + 21))
    if T >= 7:  # positions really vary (not the first 10 steps every time)
        assert len({tuple(np.flatnonzero(r)) for r in head}) > 100


@pytest.mark.parametrize("T", [10, 50, 101])
def test_temporal_order_places_two_relevant_symbols_in_their_windows(T):
    data = temporal_order.generate(T, 500, np.random.default_rng(1))
    inputs, targets = data["inputs"], data["targets"]
    (f0, f1), (s0, s1) = temporal_order.windows(T)
    relevant = inputs < 2
    assert (relevant.sum(axis=1) == 2).all()
    assert relevant[:, f0:f1].sum(axis=1).min() == 1 and relevant[:, s0:s1].sum(axis=1).min() == 1
    first = inputs[np.arange(500), relevant[:, :f1].argmax(axis=1)]
    second = inputs[np.arange(500), s0 + relevant[:, s0:s1].argmax(axis=1)]
    np.testing.assert_array_equal(targets, 2 * first + second)
    assert set(np.unique(targets)) == {0, 1, 2, 3}


@pytest.mark.parametrize("module", [selective_copy, temporal_order])
def test_generation_is_deterministic_per_seed(module):
    a = module.generate(20, 50, np.random.default_rng(3))
    b = module.generate(20, 50, np.random.default_rng(3))
    c = module.generate(20, 50, np.random.default_rng(4))
    np.testing.assert_array_equal(a["inputs"], b["inputs"])
    assert not np.array_equal(a["inputs"], c["inputs"])
