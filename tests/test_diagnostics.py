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


def tiny_net(cell: str, layers: int = 1, bidirectional: bool = False, activation: str = "tanh"):
    from bench.models import NetConfig, RecurrentNet

    torch.manual_seed(0)
    return RecurrentNet(
        NetConfig(
            input_kind="floats",
            input_size=2,
            output_size=3,
            output_kind="per-step",
            cell=cell,
            activation=activation,
            layers=layers,
            bidirectional=bidirectional,
            hidden=3,
            embedding_size=2,
        )
    ).double()


def ce(logits, targets):
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def test_state_gradient_matches_autograd_on_a_hand_written_recurrence():
    """dL/dh_t from the stepped nn.RNN equals autograd through h_t = tanh(W_ih x + b + W_hh h_{t-1})."""
    from bench.diagnostics import state_gradient_norms

    net = tiny_net("rnn")
    inputs, targets = torch.randn(2, 6, 2, dtype=torch.float64), torch.randint(0, 3, (2, 6))
    probe = state_gradient_norms(net, inputs, targets, ce)
    rnn = net.recurrent
    x = net.encoder(inputs)
    h, states = torch.zeros(2, 3, dtype=torch.float64), []
    for t in range(6):
        h = torch.tanh(x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
        states.append(h)
    loss = ce(net.head(states[-1])[:, None], targets[:, -1:])  # the loss at the last step
    grads = torch.autograd.grad(loss, states)
    expected = torch.stack([g.norm(dim=1).mean() for g in grads])
    torch.testing.assert_close(probe, expected)


def test_state_gradient_of_a_stacked_lstm_matches_finite_differences_of_its_state():
    from bench.diagnostics import last_step_loss, state_gradient_norms

    net = tiny_net("lstm", layers=2)
    inputs, targets = torch.randn(2, 4, 2, dtype=torch.float64), torch.randint(0, 3, (2, 4))
    probe = state_gradient_norms(net, inputs, targets, ce)
    x = net.encoder(inputs).detach()

    def loss_with(t_perturbed, which, index, eps):
        state, outs = None, []
        for t in range(4):
            out, state = net.recurrent(x[:, t : t + 1], state)
            if t == t_perturbed:
                h, c = (s.clone() for s in state)
                (h if which == 0 else c)[index] += eps
                state = (h, c)
                out = h[-1][:, None]  # the read-out at t sees the perturbed top-layer h_t
            outs.append(out)
        return last_step_loss(net, net.read_out(torch.cat(outs, dim=1), state), targets, ce)

    eps, expected = 1e-6, torch.zeros(4, dtype=torch.float64)
    with torch.no_grad():
        for t in range(4):
            rows = []
            for b in range(2):
                squares = 0.0
                for which in (0, 1):
                    for layer in range(2):
                        for unit in range(3):
                            index = (layer, b, unit)
                            d = (loss_with(t, which, index, eps) - loss_with(t, which, index, -eps)) / (2 * eps)
                            squares += d**2
                rows.append(squares**0.5)
            expected[t] = sum(rows) / 2
    torch.testing.assert_close(probe, expected, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("cell,activation", [("rnn", "tanh"), ("rnn", "linear"), ("gru", "tanh")])
def test_gradient_probe_columns(cell, activation):
    from bench.diagnostics import gradient_probe

    net = tiny_net(cell, activation=activation)
    inputs, targets = torch.randn(3, 5, 2, dtype=torch.float64), torch.randint(0, 3, (3, 5))
    probe = gradient_probe(net, inputs, targets, ce)
    assert probe["distance"] == [4, 3, 2, 1, 0]
    assert all(v > 0 for v in probe["dL_dh"] + probe["dL_dx"] + probe["dhT_dx"])
    if activation == "tanh":
        torch.testing.assert_close(
            torch.tensor(probe["dhT_dx"], dtype=torch.float64), input_jacobian_norms(net.recurrent, net.encoder(inputs))
        )


def test_bidirectional_probe_has_no_state_gradient_but_input_gradients():
    from bench.diagnostics import gradient_probe

    net = tiny_net("lstm", bidirectional=True)
    probe = gradient_probe(net, torch.randn(2, 4, 2, dtype=torch.float64), torch.randint(0, 3, (2, 4)), ce)
    assert all(v != v for v in probe["dL_dh"])  # NaN
    assert all(v > 0 for v in probe["dL_dx"])


def test_identity_init_makes_the_recurrence_carry_the_state():
    from bench.models import NetConfig, RecurrentNet

    for activation in ("relu", "linear"):
        net = RecurrentNet(
            NetConfig(
                input_kind="floats",
                input_size=2,
                output_size=1,
                output_kind="per-sequence",
                cell="rnn",
                activation=activation,
                init="identity",
                hidden=4,
                embedding_size=2,
            )
        )
        start = torch.rand(1, 1, 4)
        _, final = net.recurrent(torch.zeros(1, 5, 2), start)
        torch.testing.assert_close(final, start)  # zero input: h stays where it started
