"""Measured forms of two claims about the simple RNN (issue 6, first pieces):
- `zero_input_norms`: with no input, tanh keeps h bounded where a linear recurrence explodes
  (spectral radius > 1) or dies (< 1);
- `input_jacobian_norms`: how much the final state h_T still depends on the input at step t, i.e.
  the norm of dh_T/dx_t against the distance T - t ("the derivative of h_100 w.r.t. x_1 is ~0")."""
from __future__ import annotations

import torch


def zero_input_norms(matrix: torch.Tensor, steps: int = 100, activation: str = "tanh",
                     start: torch.Tensor | None = None) -> torch.Tensor:
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
    its (already embedded) inputs. One backward pass per hidden unit of h_T."""
    x = inputs.detach().clone().requires_grad_(True)
    outputs, _ = recurrent(x)
    final = outputs[:, -1]
    squares = torch.zeros(x.shape[:2], dtype=x.dtype)
    for unit in range(final.shape[1]):
        (grad,) = torch.autograd.grad(final[:, unit].sum(), x, retain_graph=unit + 1 < final.shape[1])
        squares += grad.pow(2).sum(dim=-1)  # rows of the batch are independent: no cross terms
    return squares.sqrt().mean(dim=0)
