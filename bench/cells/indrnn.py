"""IndRNN (Li, Li, Cook, Zhu & Gao 2018, "Independently Recurrent Neural Network"):
h_t = relu(W·x_t + u ⊙ h_{t-1} + b). Each unit recurs only on itself (u is a vector, not a matrix),
so its gradient through time is u^k times ReLU's 0/1 mask: it neither mixes nor, with |u| <= 1, explodes.
"""

from __future__ import annotations

import torch
from torch import nn

# The paper constrains |u| to [0, 2^(1/T)] so that u^T stays below 2 with ReLU; as T grows that bound
# tends to 1, which we use for every length (clamped in the forward pass: the same as clipping after
# each optimizer step, without touching the optimizer).
MAX_RECURRENT_WEIGHT = 1.0


class IndRNN(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.input = nn.Linear(input_size, hidden_size)  # W and b
        # The paper's initialisation for long-range tasks: u ~ U(0, 1), so that units start by keeping
        # some of their state rather than sign-flipping it.
        self.recurrent_weight = nn.Parameter(torch.rand(hidden_size))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, I) -> h (B, T, H) and h_T; the loop is over time, each step elementwise."""
        drive = self.input(x)
        u = self.recurrent_weight.clamp(-MAX_RECURRENT_WEIGHT, MAX_RECURRENT_WEIGHT)
        h = drive.new_zeros(drive.shape[0], self.hidden_size) if state is None else state
        outputs = []
        for t in range(drive.shape[1]):
            h = torch.relu(drive[:, t] + u * h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h
