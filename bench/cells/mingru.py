"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates read the input only,

    z_t = σ(W_z x_t + b_z),  h̃_t = g(W_h x_t + b_h),  h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t,

so the recurrence is linear in h and runs in parallel over time (bench/cells/scan.py). g is the
paper's activation, g(x) = x + 0.5 for x >= 0 and σ(x) below: it keeps h̃ (and so h) positive, which
the paper's log-space scan needs; we keep it so that the cell is the paper's, whichever scan runs it.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.cells.scan import linear_scan


def g(x: torch.Tensor) -> torch.Tensor:
    """x + 0.5 for x >= 0, σ(x) below: continuous, positive, and linear (not saturating) above 0."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


class MinGRU(nn.Module):
    """One layer, one direction. The state is h (B, H); None means h_0 = 0."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size, 2 * hidden_size)  # [W_z; W_h]: one matmul for both

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, I) -> (h_1..h_T (B, T, H), h_T (B, H)), all steps at once."""
        gate, candidate = self.linear(x).chunk(2, dim=-1)
        # 1 - σ(k) = σ(-k), computed as such: exact even where σ(k) rounds to 1
        h = linear_scan(torch.sigmoid(-gate), torch.sigmoid(gate) * g(candidate), state)
        return h, h[:, -1]

    def sequential(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The same, one step at a time, as the paper writes it: the reference for the scan. (The gates'
        matmul, which does not depend on h, is done for all steps at once.)"""
        h = x.new_zeros(x.shape[0], self.hidden_size) if state is None else state
        gates, candidates = self.linear(x).chunk(2, dim=-1)
        outputs = []
        for t in range(x.shape[1]):
            z = torch.sigmoid(gates[:, t])
            h = (1 - z) * h + z * g(candidates[:, t])
            outputs.append(h)
        return torch.stack(outputs, dim=1), h
