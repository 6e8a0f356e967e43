"""Measured forms of two claims about the simple RNN:
- `zero_input_norms`: with no input, tanh keeps h bounded where a linear recurrence explodes
  (spectral radius > 1) or dies (< 1);
- `input_jacobian_norms`: how much the final state h_T still depends on the input at step t, i.e.
  the norm of dh_T/dx_t against the distance T - t ("the derivative of h_100 w.r.t. x_1 is ~0");
- `gradient_probe`: the same, plus the norm of dL/dh_t, of any trained or untrained network."""

from __future__ import annotations

import math

import torch


def zero_input_norms(
    matrix: torch.Tensor, steps: int = 100, activation: str = "tanh", start: torch.Tensor | None = None
) -> torch.Tensor:
    """||h_t|| for t = 0..steps of h_t = act(W h_{t-1}) (no input, no bias), from a unit-norm h_0."""
    act = torch.tanh if activation == "tanh" else (lambda v: v)
    h = start if start is not None else torch.ones(matrix.shape[0], dtype=matrix.dtype) / matrix.shape[0] ** 0.5
    norms = [h.norm()]
    for _ in range(steps):
        h = act(matrix @ h)
        norms.append(h.norm())
    return torch.stack(norms)


def input_jacobian_norms(recurrent: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of dh_T/dx_t for every step t, averaged over the batch.

    `recurrent` is a network's recurrent stack (nn.RNN/LSTM/GRU, batch_first); `inputs` (B, L, E) are
    its (already embedded) inputs. h_T is the top layer's last state of the forward direction.
    One backward pass per hidden unit of h_T."""
    x = inputs.detach().clone().requires_grad_(True)
    outputs, _ = recurrent(x)
    final = outputs[:, -1, : recurrent.hidden_size]
    squares = torch.zeros(x.shape[:2], dtype=x.dtype)
    for unit in range(final.shape[1]):
        (grad,) = torch.autograd.grad(final[:, unit].sum(), x, retain_graph=unit + 1 < final.shape[1])
        squares += grad.pow(2).sum(dim=-1)  # rows of the batch are independent: no cross terms
    return squares.sqrt().mean(dim=0)


def state_gradient_norms(net, inputs: torch.Tensor, targets: torch.Tensor, loss_fn) -> torch.Tensor:
    """Norm of dL/ds_t for every step t, averaged over the batch, where s_t is the whole recurrent
    state after step t (every layer's h_t, and what the cell carries besides, e.g. an LSTM's c_t) and
    L the loss at the last step.

    The total derivative, for any cell: the network is stepped one time step at a time, each step
    starting from a detached copy of the previous state (a leaf), and the read-out at t reads the top
    layer's h_t from that leaf; the gradient is then carried back one step at a time. Unidirectional
    networks only: a backward direction has no state "after step t" that later steps depend on."""
    if getattr(net, "directions", 1) != 1:
        raise ValueError("dL/dh_t needs a unidirectional network")
    x = net.encoder(inputs).detach()
    leaves, produced, outputs = [], [], []
    state = None
    for t in range(x.shape[1]):
        _, new_state = net.recurrent(x[:, t : t + 1], state)
        state = tuple(node.detach().requires_grad_(True) for node in as_tuple(new_state))
        produced.append(as_tuple(new_state))
        leaves.append(state)
        outputs.append(state[0][-1][:, None])  # the read-out at t sees the top layer's h_t
        state = state if isinstance(new_state, tuple) else state[0]
    final = leaves[-1] if len(leaves[-1]) > 1 else leaves[-1][0]
    last_step_loss(net, net.read_out(torch.cat(outputs, dim=1), final), targets, loss_fn).backward()
    for t in range(len(leaves) - 1, 0, -1):  # dL/ds_{t-1} += (ds_t/ds_{t-1})^T dL/ds_t
        pairs = [(node, leaf.grad) for node, leaf in zip(produced[t], leaves[t]) if leaf.grad is not None]
        torch.autograd.backward([node for node, _ in pairs], [grad for _, grad in pairs])
    squares = [sum(grad_or_zeros(leaf).abs().pow(2).sum(dim=(0, 2)) for leaf in step) for step in leaves]
    net.zero_grad(set_to_none=True)
    return torch.stack(squares, dim=1).sqrt().mean(dim=0)


def input_gradient_norms(net, inputs: torch.Tensor, targets: torch.Tensor, loss_fn) -> torch.Tensor:
    """Norm of dL/dx_t (x_t: the embedded input at step t; L: the loss at the last step) for every
    step, averaged over the batch."""
    x = net.encoder(inputs).detach().requires_grad_(True)
    outputs, final = net.recurrent(x)
    loss = last_step_loss(net, net.read_out(outputs, final), targets, loss_fn)
    (grad,) = torch.autograd.grad(loss, x)
    return grad.pow(2).sum(dim=-1).sqrt().mean(dim=0)


def gradient_probe(net, inputs: torch.Tensor, targets: torch.Tensor, loss_fn) -> dict[str, list[float]]:
    """Every probe as columns by distance from the end of the sequence (0 = last step):
    dL/dh_t (NaN for bidirectional networks), dL/dx_t and dh_T/dx_t."""
    was_training = net.training
    net.eval()
    try:  # cuDNN refuses RNN backward in eval mode: use the native kernels for the probe
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            steps = inputs.shape[1]
            columns = {"dL_dh": [math.nan] * steps}
            if getattr(net, "directions", 1) == 1:
                columns["dL_dh"] = state_gradient_norms(net, inputs, targets, loss_fn).tolist()
            columns["dL_dx"] = input_gradient_norms(net, inputs, targets, loss_fn).tolist()
            columns["dhT_dx"] = input_jacobian_norms(net.recurrent, net.encoder(inputs)).tolist()
    finally:
        net.train(was_training)
        net.zero_grad(set_to_none=True)
    return {"distance": list(range(steps - 1, -1, -1)), **columns}


def last_step_loss(net, logits: torch.Tensor, targets: torch.Tensor, loss_fn) -> torch.Tensor:
    """The loss at the last step only (per-step tasks score every step; the probe asks how far back
    the final prediction reaches, so earlier steps' own loss terms must not mask the decay)."""
    if net.output_kind == "per-step":
        logits, targets = logits[:, -1:], targets[:, -1:]
    return loss_fn(logits, targets)


def as_tuple(state) -> tuple:
    return state if isinstance(state, tuple) else (state,)


def grad_or_zeros(node: torch.Tensor) -> torch.Tensor:
    return node.grad if node.grad is not None else torch.zeros_like(node)
