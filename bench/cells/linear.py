"""The simple RNN without its activation, h_t = A·[h_{t-1}; x_t] + b, for the ablation of claim 2
(tanh keeps h bounded where a linear recurrence explodes): torch's nn.RNN offers only tanh and relu."""

from __future__ import annotations

import torch
from torch import nn


class LinearRecurrence(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = nn.Linear(hidden_size + input_size, hidden_size)  # A acts on [h; x]

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.new_zeros(x.shape[0], self.hidden_size) if state is None else state
        outputs = []
        for t in range(x.shape[1]):
            h = self.cell(torch.cat([h, x[:, t]], dim=-1))
            outputs.append(h)
        return torch.stack(outputs, dim=1), h
