"""The modern cells (minGRU, minLSTM, LRU): the parallel scan equals the plain loop, forward and
backward; finite-difference gradients; the parameter formulas; stepping with the carried state."""

import importlib
import math

import pytest
import torch
from torch.func import functional_call

from bench.cells import CELLS, group, lru

MODERN = group("modern")
BATCH, INPUT, HIDDEN = 4, 6, 8
TOLERANCE = 1e-5


def layer_class(name: str) -> type[torch.nn.Module]:
    module, _, class_name = CELLS[name].layer.partition(":")
    return getattr(importlib.import_module(module), class_name)


def layer(name: str, dtype=torch.float32, input_size=INPUT, hidden_size=HIDDEN):
    torch.manual_seed(0)
    return layer_class(name)(input_size, hidden_size).to(dtype)


def test_the_modern_group_is_our_three_parallel_cells():
    assert MODERN == ["mingru", "minlstm", "lru"]
    assert all(not CELLS[name].torch_layer for name in MODERN)


def random_state(name: str, dtype=torch.float32) -> torch.Tensor:
    if name == "lru":  # LRU carries its complex state
        dtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    return torch.randn(BATCH, HIDDEN, dtype=dtype)


def outputs_and_gradients(run, x, state, parameters, seed=1):
    """Outputs, final state and the gradients of a loss on both w.r.t. x, the parameters and the state."""
    outputs, final = run(x, state)
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(outputs.shape, generator=generator, dtype=outputs.dtype)
    final_weights = torch.randn(final.shape, generator=generator, dtype=final.real.dtype)
    loss = (outputs * weights).sum() + (final * final_weights).real.sum()
    wrt = [x, *parameters] + ([state] if state is not None else [])
    return outputs, final, torch.autograd.grad(loss, wrt)


@pytest.mark.parametrize("name", MODERN)
@pytest.mark.parametrize("steps", [1, 7, 1000])
@pytest.mark.parametrize("initial", [False, True], ids=["zero-state", "given-state"])
def test_parallel_scan_equals_the_sequential_loop_forward_and_backward(name, steps, initial):
    net = layer(name)
    torch.manual_seed(steps)
    x = torch.randn(BATCH, steps, INPUT, requires_grad=True)
    state = random_state(name).requires_grad_() if initial else None
    parameters = list(net.parameters())
    outputs, final, grads = outputs_and_gradients(net, x, state, parameters)
    ref_outputs, ref_final, ref_grads = outputs_and_gradients(net.sequential, x, state, parameters)
    assert outputs.shape == (BATCH, steps, HIDDEN) and final.shape == (BATCH, HIDDEN)
    assert (outputs - ref_outputs).abs().max() <= TOLERANCE
    assert (final - ref_final).abs().max() <= TOLERANCE
    # Parameter gradients sum over batch x time (up to ~1e4 for LRU's phase at T=1000): held to 1e-5 of
    # their own size, gradients of size 1 or less to 1e-5 absolutely.
    for grad, ref in zip(grads, ref_grads):
        assert (grad - ref).abs().max() <= TOLERANCE * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("name", MODERN)
def test_gradients_match_finite_differences_in_float64(name):
    net = layer(name, torch.float64, input_size=3, hidden_size=4)
    names = [n for n, _ in net.named_parameters()]
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    state = random_state(name, torch.float64)[:2, :4].clone().requires_grad_()

    def run(x, state, *parameters):
        return functional_call(net, dict(zip(names, parameters)), (x, state))

    parameters = [p.detach().clone().requires_grad_() for p in net.parameters()]
    assert torch.autograd.gradcheck(run, (x, state, *parameters))


@pytest.mark.parametrize("name", MODERN)
@pytest.mark.parametrize("input_size,hidden_size", [(1, 1), (6, 8), (128, 64), (3, 100)])
def test_parameter_formula_counts_the_trainable_parameters(name, input_size, hidden_size):
    net = layer_class(name)(input_size, hidden_size)
    assert CELLS[name].parameters(input_size, hidden_size) == sum(
        p.numel() for p in net.parameters() if p.requires_grad
    )


@pytest.mark.parametrize("name", MODERN)
def test_stepping_with_the_carried_state_equals_the_whole_sequence(name):
    net = layer(name)
    x = torch.randn(BATCH, 9, INPUT)
    whole, final = net(x)
    state, steps = None, []
    for t in range(x.shape[1]):
        output, state = net(x[:, t : t + 1], state)
        steps.append(output)
    assert (torch.cat(steps, dim=1) - whole).abs().max() <= TOLERANCE
    assert (state - final).abs().max() <= TOLERANCE


def test_lru_starts_on_the_ring_with_normalised_inputs():
    net = lru.LRU(4, 500, r_min=0.5, r_max=0.8, max_phase=math.pi / 4)
    eigenvalues = net.eigenvalues().detach()
    assert eigenvalues.abs().min() >= 0.5 - 1e-6 and eigenvalues.abs().max() <= 0.8 + 1e-6
    assert eigenvalues.angle().min() >= 0 and eigenvalues.angle().max() <= math.pi / 4 + 1e-6
    # uniform by area on the ring: half of the eigenvalues lie inside radius sqrt((0.5² + 0.8²) / 2)
    assert (eigenvalues.abs() < math.sqrt((0.5**2 + 0.8**2) / 2)).float().mean() == pytest.approx(0.5, abs=0.1)
    torch.testing.assert_close(net.gamma_log.exp(), (1 - eigenvalues.abs() ** 2).sqrt())


def test_lru_near_the_unit_circle_matches_the_loop_at_length_1000():
    """|λ| ~ 0.999 is where the scan's repeated squaring of λ would lose ~2e-5 in fp32 (λ^512 ten
    squarings deep): the powers are taken in float64 (scan.exact_products)."""
    torch.manual_seed(0)
    net = lru.LRU(8, 16, r_min=0.998, r_max=0.999)
    x, state = torch.randn(4, 1000, 8), torch.randn(4, 16, dtype=torch.complex64)
    outputs, final = net(x, state)
    ref_outputs, ref_final = net.sequential(x, state)
    assert (outputs - ref_outputs).abs().max() <= TOLERANCE and (final - ref_final).abs().max() <= TOLERANCE


@pytest.mark.parametrize("name", MODERN)
def test_long_sequences_stay_finite_and_bounded(name):
    """Gates and |λ| below 1 keep the state a weighted average of inputs: no blow-up at T=1000."""
    net = layer(name)
    outputs, final = net(10 * torch.randn(2, 1000, INPUT))
    assert torch.isfinite(outputs).all() and torch.isfinite(final).all()
