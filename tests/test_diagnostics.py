"""Zero-input norms for known matrices, and the Jacobian probe against finite differences."""
import pytest
import torch

from bench.diagnostics import input_jacobian_norms, zero_input_norms


@pytest.mark.parametrize("radius", [0.9, 1.0, 1.1])
def test_linear_recurrence_scales_by_the_spectral_radius_each_step(radius):
    norms = zero_input_norms(radius * torch.eye(4, dtype=torch.float64), steps=100, activation="linear")
    expected = torch.tensor([radius**t for t in range(101)], dtype=torch.float64)
    torch.testing.assert_close(norms, expected)


def test_linear_recurrence_explodes_above_one_and_dies_below():
    assert zero_input_norms(1.1 * torch.eye(3, dtype=torch.float64), activation="linear")[-1] > 1e4
    assert zero_input_norms(0.9 * torch.eye(3, dtype=torch.float64), activation="linear")[-1] < 1e-4


def test_tanh_keeps_the_state_bounded_even_above_radius_one():
    matrix = 3.0 * torch.eye(5, dtype=torch.float64)
    norms = zero_input_norms(matrix, steps=100, activation="tanh")
    assert norms.max() <= 5**0.5 + 1e-12  # every |h_i| <= 1
    assert norms[-1] > 0.5  # bounded, not dead


def test_orthogonal_linear_recurrence_keeps_its_norm():
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    norms = zero_input_norms(q, steps=100, activation="linear")
    torch.testing.assert_close(norms, torch.ones(101, dtype=torch.float64))


@pytest.mark.parametrize("cell", [torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU])
def test_jacobian_probe_matches_finite_differences(cell):
    torch.manual_seed(0)
    recurrent = cell(2, 3, batch_first=True).double()
    x = torch.randn(2, 5, 2, dtype=torch.float64)
    probe = input_jacobian_norms(recurrent, x)
    eps, expected = 1e-6, torch.zeros(5, dtype=torch.float64)
    for t in range(5):
        per_row = []
        for b in range(2):
            columns = []
            for e in range(2):
                plus, minus = x.clone(), x.clone()
                plus[b, t, e] += eps
                minus[b, t, e] -= eps
                columns.append((recurrent(plus)[0][b, -1] - recurrent(minus)[0][b, -1]) / (2 * eps))
            per_row.append(torch.stack(columns).norm())
        expected[t] = torch.stack(per_row).mean()
    torch.testing.assert_close(probe, expected, rtol=1e-5, atol=1e-8)


def test_untrained_tanh_rnn_forgets_early_inputs():
    """The measured claim on an untrained simple RNN: dh_T/dx_t shrinks with the distance T - t."""
    torch.manual_seed(0)
    rnn = torch.nn.RNN(4, 16, batch_first=True)
    norms = input_jacobian_norms(rnn, torch.randn(8, 60, 4))
    assert norms[-1] > 100 * norms[0]
